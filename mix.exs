defmodule Mix.Tasks.Compile.LiveCovNif do
  @moduledoc """
  Builds LiveCov's Rust NIF with cargo and installs it as `priv/native/live_cov_nif.so`.

  Defined here, in `mix.exs`, because a compiler under `lib/` is not available in time to
  compile the project that defines it. Without cargo, an already built library is kept.
  """
  use Mix.Task.Compiler

  @root __DIR__
  @lib "live_cov_nif"

  @impl true
  def run(_args) do
    dest = Path.join([@root, "priv", "native", @lib <> ".so"])

    cond do
      System.get_env("LIVE_COV_SKIP_NIF") in ["1", "true"] ->
        {:noop, []}

      System.find_executable("cargo") == nil and File.exists?(dest) ->
        {:noop, []}

      System.find_executable("cargo") == nil ->
        Mix.raise(
          "LiveCov needs cargo to build its NIF (#{dest}): install Rust (https://rustup.rs) " <>
            "or copy a built live_cov_nif.so there"
        )

      true ->
        build(dest)
    end
  end

  defp build(dest) do
    # The NIFs of the test suite and the benchmarks only in MIX_ENV=test (cargo feature
    # test-nifs); every other build leaves them out.
    features = if Mix.env() == :test, do: ["--features", "test-nifs"], else: []
    args = ["build", "--release", "--quiet", "-p", @lib] ++ features

    case System.cmd("cargo", args, cd: @root, stderr_to_stdout: true) do
      {_, 0} ->
        target = System.get_env("CARGO_TARGET_DIR") || Path.join(@root, "target")
        built = Path.join([target, "release", "lib" <> @lib <> ext()])
        File.mkdir_p!(Path.dirname(dest))

        if stale?(built, dest) do
          # Copy to a temporary name and rename: a running VM keeps its mapping of the old file.
          tmp = "#{dest}.#{System.pid()}.#{System.unique_integer([:positive])}.tmp"
          File.cp!(built, tmp)
          File.rename!(tmp, dest)
          {:ok, []}
        else
          {:noop, []}
        end

      {out, status} ->
        Mix.raise("cargo build of the LiveCov NIF failed (exit #{status}):\n" <> out)
    end
  end

  defp stale?(built, dest) do
    case {File.stat(built), File.stat(dest)} do
      {{:ok, b}, {:ok, d}} -> b.mtime > d.mtime or b.size != d.size
      _ -> true
    end
  end

  defp ext do
    case :os.type() do
      {:unix, :darwin} -> ".dylib"
      _ -> ".so"
    end
  end
end

defmodule LiveCov.MixProject do
  use Mix.Project

  @version "0.1.0"

  def project do
    [
      app: :live_cov,
      version: @version,
      elixir: "~> 1.14",
      compilers: [:live_cov_nif] ++ Mix.compilers(),
      elixirc_paths: elixirc_paths(Mix.env()),
      start_permanent: Mix.env() == :prod,
      deps: [],
      test_coverage: [ignore_modules: []],
      # Fixtures and support files live under test/ too; they are not test files.
      test_ignore_filters: [&String.starts_with?(&1, ["test/fixtures/", "test/support/"])],
      preferred_cli_env: ["live_cov.bench": :test]
    ]
  end

  def application do
    [
      extra_applications: [:logger, :compiler, :crypto, :tools, :inets, :public_key, :ssl],
      mod: {LiveCov.Application, []}
    ]
  end

  defp elixirc_paths(:test), do: ["lib", "test/support"]
  defp elixirc_paths(_), do: ["lib"]
end
