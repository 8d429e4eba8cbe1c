# Elixir 1.15+ prunes the code path to the project's own applications; some tests also use
# OTP applications LiveCov does not (the Cobertura round trips read XML with :xmerl).
for app <- ~w(xmerl),
    dir <- Path.wildcard(Path.join([:code.root_dir(), "lib", app <> "-*", "ebin"])),
    do: Code.append_path(dir)

# The counter backend the suite runs on: `LIVE_COV_BACKEND=nif` (or `native`) makes it the
# default of every call that does not name one; unset, the default is `:auto`. The matrix
# runs the suite once per backend a runtime has (scripts/matrix.sh).
case System.get_env("LIVE_COV_BACKEND") do
  nil ->
    :ok

  name when name in ~w(auto native nif) ->
    Application.put_env(:live_cov, :backend, String.to_atom(name))

  other ->
    raise "LIVE_COV_BACKEND=#{other}: use auto, native or nif"
end

IO.puts("LiveCov test backend: #{inspect(LiveCov.Counter.resolve())} (mode: :counts)")

# Peer nodes (later suites) need distribution; start it once for the whole run.
ExUnit.start(capture_log: true)
