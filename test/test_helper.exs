# Elixir 1.15+ prunes the code path to the project's own applications; some tests also use
# OTP applications LiveCov does not (the Cobertura round trips read XML with :xmerl).
for app <- ~w(xmerl),
    dir <- Path.wildcard(Path.join([:code.root_dir(), "lib", app <> "-*", "ebin"])),
    do: Code.append_path(dir)

# Peer nodes (later suites) need distribution; start it once for the whole run.
ExUnit.start(capture_log: true)
