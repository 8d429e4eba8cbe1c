defmodule Mix.Tasks.LiveCov.Bench do
  @shortdoc "Runs LiveCov's benchmark programs (bench/*.exs) and prints their tables"

  @moduledoc """
  Runs every benchmark program under `bench/` and prints what each one prints
  (markdown tables).

      mix live_cov.bench                    # every bench/*.exs, full runs
      mix live_cov.bench --quick            # every program, short runs (< 30 s each)
      mix live_cov.bench hot_path           # only bench/hot_path.exs
      mix live_cov.bench --write            # also write bench/RESULTS.md
      mix live_cov.bench hot_path -- --reps 5 --iterations 50000

  A benchmark program is any `bench/*.exs` file (files under `bench/support/`
  are fixtures, not programs). The project is compiled first; then each
  program runs in its own OS process, `elixir -pa <live_cov ebin> bench/NAME.exs`,
  with `--quick` when given and the arguments after `--`. A program that
  needs more BEAMs (as `hot_path.exs` does, one per tool) starts them itself.

  Options:

    * `--quick` - passed to every program: fewer iterations, for a smoke run.
    * `--write` - writes the programs' output, the command and the date to
      `bench/RESULTS.md`. Whatever follows a `<!-- keep below -->` line in the
      existing file (hand-written analysis) is kept.

  The task fails when a program exits with a non-zero status (a program exits
  with 1 when its own checks fail, e.g. wrong coverage counts).
  """

  use Mix.Task

  @switches [quick: :boolean, write: :boolean]
  @results "bench/RESULTS.md"
  @keep "<!-- keep below -->"

  @impl true
  def run(argv) do
    {own, passed} = split_passthrough(argv)
    {opts, names, invalid} = OptionParser.parse(own, strict: @switches)

    if invalid != [] do
      Mix.raise(
        "mix live_cov.bench: unknown option(s) #{inspect(invalid)}; " <>
          "use --quick, --write, program names, and `--` before arguments for the programs"
      )
    end

    Mix.Task.run("compile", [])
    root = Path.dirname(Mix.Project.project_file())
    ebin = Mix.Project.compile_path()

    elixir =
      System.find_executable("elixir") || Mix.raise("mix live_cov.bench: elixir is not on PATH")

    programs = select(programs(root), names)
    program_args = if(opts[:quick], do: ["--quick"], else: []) ++ passed

    results =
      for program <- programs do
        Mix.shell().info([:bright, "==> bench/#{Path.basename(program)}", :reset])
        {program, run_program(elixir, ebin, root, program, program_args)}
      end

    if opts[:write], do: write_results(root, argv, results)

    case for({program, {_out, status}} <- results, status != 0, do: Path.basename(program)) do
      [] -> :ok
      failed -> Mix.raise("mix live_cov.bench: #{Enum.join(failed, ", ")} failed (see above)")
    end
  end

  @doc false
  def programs(root) do
    root |> Path.join("bench/*.exs") |> Path.wildcard() |> Enum.sort()
  end

  defp select(programs, []), do: programs

  defp select(programs, names) do
    wanted = Enum.map(names, &Path.basename(&1, ".exs"))
    chosen = Enum.filter(programs, &(Path.basename(&1, ".exs") in wanted))
    known = Enum.map(programs, &Path.basename(&1, ".exs"))

    case wanted -- known do
      [] ->
        chosen

      unknown ->
        Mix.raise(
          "mix live_cov.bench: no bench program #{Enum.join(unknown, ", ")}; " <>
            "the programs are: #{Enum.join(known, ", ")}"
        )
    end
  end

  defp split_passthrough(argv) do
    case Enum.split_while(argv, &(&1 != "--")) do
      {own, ["--" | passed]} -> {own, passed}
      {own, []} -> {own, []}
    end
  end

  # Streams the program's stdout to ours while keeping it; stderr goes straight through.
  defp run_program(elixir, ebin, root, program, args) do
    port =
      Port.open({:spawn_executable, elixir}, [
        :binary,
        :exit_status,
        args: ["-pa", ebin, program | args],
        cd: root
      ])

    collect(port, [])
  end

  defp collect(port, acc) do
    receive do
      {^port, {:data, data}} ->
        IO.write(data)
        collect(port, [acc | data])

      {^port, {:exit_status, status}} ->
        {IO.iodata_to_binary(acc), status}
    end
  end

  defp kept(path) do
    with {:ok, old} <- File.read(path),
         [_, rest] <- String.split(old, @keep, parts: 2) do
      "\n" <> @keep <> rest
    else
      _ -> ""
    end
  end

  defp write_results(root, argv, results) do
    command =
      ["mix", "live_cov.bench" | argv]
      |> Enum.join(" ")
      |> then(fn cmd ->
        case System.get_env("MIX_BUILD_PATH") do
          nil -> cmd
          path -> "MIX_BUILD_PATH=#{path} " <> cmd
        end
      end)

    sections =
      for {program, {out, status}} <- results do
        note = if status == 0, do: "", else: "\n**Exited with status #{status}.**\n"

        "<!-- bench/#{Path.basename(program)} -->\n\n" <>
          String.trim_trailing(out) <> "\n" <> note
      end

    text = """
    # LiveCov benchmark results

    Latest run, #{DateTime.utc_now() |> DateTime.truncate(:second) |> DateTime.to_iso8601()}:

    ```sh
    #{command}
    ```

    #{Enum.join(sections, "\n")}
    """

    path = Path.join(root, @results)
    File.write!(path, text <> kept(path))
    Mix.shell().info("Wrote #{Path.relative_to(path, root)}")
  end
end
