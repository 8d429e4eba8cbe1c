defmodule LiveCov do
  @moduledoc """
  Runtime line coverage for live Elixir/Erlang systems.

  From an iex remote console of a running release:

      LiveCov.start(:my_app)                 # instrument every module of the application
      # ... run integration tests against the node ...
      LiveCov.total_coverage()               #=> 72.4
      LiveCov.report().files                 # per-file, per-line data
      LiveCov.write([:html, :lcov], "/tmp/cov",
        compile_root: "/build/my_app", runtime_root: "/srv/my_app/src")
      LiveCov.stop()                         # original code back, nothing killed

  In a project's `mix.exs`, `test_coverage: [tool: LiveCov]` makes `mix test --cover` use
  LiveCov (see `LiveCov.MixTool`).
  """

  alias LiveCov.{Analyse, Registry, Stats, Table}

  @stats_opts [
    :compile_root,
    :runtime_root,
    :path_map,
    :root,
    :ignore_modules,
    :skip_files,
    :empty_coverage,
    :generated_at
  ]

  @typedoc "An application name, a module, a beam file, a directory of beams, or a list of them."
  @type target :: atom | Path.t() | charlist | [target]

  @type summary :: %{
          instrumented: [module],
          skipped: [%{target: term, kind: atom, message: String.t()}],
          applications: [atom]
        }

  @doc """
  Instruments `target` on this node and returns a summary of what was instrumented and what
  was skipped, and why.

  `target` is an OTP application (its modules are found through its `.app` file), a list of
  applications, a directory of `.beam` files, a beam file, a module, or a list mixing them.
  Modules are instrumented in parallel; each failure is reported for its module alone and
  leaves that module's code untouched.

  Called by Mix as a `test_coverage` tool (`start(compile_path, opts)` with `tool: LiveCov` in
  `opts`) it returns the function Mix runs after the suite; see `LiveCov.MixTool`.
  """
  @spec start(target, keyword) :: summary | (() -> any) | nil | {:error, {atom, String.t()}}
  def start(target, opts \\ [])

  def start(compile_path, opts) when is_binary(compile_path) and is_list(opts) do
    if Keyword.get(opts, :tool) == __MODULE__,
      do: LiveCov.MixTool.start(compile_path, opts),
      else: do_start(compile_path, opts)
  end

  def start(target, opts) when is_list(opts), do: do_start(target, opts)

  defp do_start(target, _opts) do
    {:ok, _} = Application.ensure_all_started(:live_cov)

    case resolve(List.wrap(target), {[], [], []}) do
      {:error, _} = error ->
        error

      {:ok, targets, skipped, apps} ->
        {ok, failed} =
          targets
          |> Registry.instrument()
          |> Enum.reduce({[], []}, fn
            {:ok, m}, {ok, failed} -> {[m | ok], failed}
            {:error, t, {kind, msg}}, {ok, failed} -> {ok, [skip(t, kind, msg) | failed]}
          end)

        %{
          instrumented: Enum.reverse(ok),
          skipped: skipped ++ Enum.reverse(failed),
          applications: apps
        }
    end
  end

  # Expands applications and directories into modules and beam files.
  defp resolve([], {targets, skipped, apps}),
    do: {:ok, Enum.uniq(Enum.reverse(targets)), Enum.reverse(skipped), Enum.reverse(apps)}

  defp resolve([t | rest], {targets, skipped, apps})
       when is_atom(t) and t not in [nil, true, false] do
    case app_modules(t) do
      {:ok, mods} -> resolve(rest, {Enum.reverse(mods, targets), skipped, [t | apps]})
      :not_an_app -> resolve(rest, {[t | targets], skipped, apps})
    end
  end

  defp resolve([t | rest], acc) when is_list(t) and t != [] do
    if List.ascii_printable?(t),
      do: resolve([List.to_string(t) | rest], acc),
      else: resolve(t ++ rest, acc)
  end

  defp resolve([t | rest], {targets, skipped, apps}) when is_binary(t) do
    cond do
      File.dir?(t) ->
        beams = t |> Path.join("*.beam") |> Path.wildcard() |> Enum.sort()
        resolve(rest, {Enum.reverse(beams, targets), skipped, apps})

      File.regular?(t) ->
        resolve(rest, {[t | targets], skipped, apps})

      true ->
        msg = "#{t} is neither a directory of .beam files nor a .beam file: check the path"
        resolve(rest, {targets, [skip(t, :no_beam, msg) | skipped], apps})
    end
  end

  defp resolve([t | _], _acc) do
    {:error,
     {:bad_target,
      "cannot instrument #{inspect(t)}: give an application name, a module, a beam file, " <>
        "a directory of beams, or a list of them"}}
  end

  defp app_modules(app) do
    case :application.load(app) do
      :ok ->
        {:ok, Application.spec(app, :modules) || []}

      {:error, {:already_loaded, ^app}} ->
        {:ok, Application.spec(app, :modules) || []}

      {:error, _} ->
        :not_an_app
    end
  end

  defp skip(target, kind, message), do: %{target: target, kind: kind, message: message}

  @doc """
  Restores every instrumented module's original code and frees the counters. Processes still
  running instrumented code are never killed: they are listed under `:still_running` and move
  to the original code at their next fully qualified call. See `LiveCov.Registry.restore/1`
  for `:failed`.
  """
  @spec stop() :: %{
          restored: [module],
          still_running: [{module, [pid]}],
          failed: [{module, {atom, String.t()}}]
        }
  def stop, do: Registry.restore(:all)

  @doc "Zeroes every counter."
  @spec reset() :: :ok
  def reset, do: Table.reset_all()

  @doc "Instrumented modules."
  @spec modules() :: [module]
  def modules, do: Enum.map(Registry.modules(), & &1.module)

  @doc """
  Line data of every instrumented module, as `LiveCov.Stats.build/2` takes it: source path,
  per-line counts (a line's count is the largest count of the bump sites on it; line 0 is
  left out) and per-function entry counts.
  """
  @spec module_data(keyword) :: [Stats.module_data()]
  def module_data(_opts \\ []) do
    infos = Registry.modules()
    all_counts = LiveCov.Counts.collect(infos)

    for info <- infos do
      counts = Map.fetch!(all_counts, info.module)

      %{
        module: info.module,
        source: info.source,
        lines: Analyse.lines(info, counts),
        functions: Analyse.functions(info, counts)
      }
    end
  end

  @doc """
  The coverage report: `%LiveCov.Stats{coverage:, sloc:, hits:, misses:, files: [...]}`.

  Options (see `LiveCov.Stats.build/2`): `compile_root:` and `runtime_root:` map where sources
  were compiled to where they are now; `ignore_modules:`, `skip_files:`, `root:`.
  """
  @spec report(keyword) :: Stats.t() | {:error, {atom, String.t()}}
  def report(opts \\ []), do: Stats.build(module_data(opts), Keyword.take(opts, @stats_opts))

  @doc "Total line coverage in percent, one decimal."
  @spec total_coverage(keyword) :: float | {:error, {atom, String.t()}}
  def total_coverage(opts \\ []) do
    with %Stats{} = stats <- report(opts), do: stats.coverage
  end

  @doc """
  Writes several report formats to `dir` from one snapshot of the counters, e.g.
  `LiveCov.write([:html, :lcov, :cobertura], "cover")`. Returns `{:ok, paths}`.
  Formats: #{LiveCov.Format.formats() |> Map.keys() |> Enum.sort() |> Enum.map_join(", ", &"`#{inspect(&1)}`")}.
  """
  @spec write([atom], Path.t(), keyword) :: {:ok, [Path.t()]} | {:error, {atom, String.t()}}
  def write(formats, dir, opts \\ []) do
    with %Stats{} = stats <- report(opts) do
      LiveCov.Report.Writer.write(stats, formats, dir, opts)
    end
  end
end
