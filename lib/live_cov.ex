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

  alias LiveCov.{Instrumented, Report, Session, Stats}

  require LiveCov.MainNode

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

  Options:

    * `mode: :counts` (default) - every executed line is counted exactly, for as long as
      coverage runs.
    * `mode: :coverage` - adaptive coverage: once a line has run, its bump is removed from
      the loaded code, so the overhead decays toward zero; counts are then lower bounds
      ("hit"), see `LiveCov.Prune`. `prune: [interval: ms, ...]` sets how pruning runs.
    * `nodes: [node]` - covers these nodes too (see `LiveCov.Nodes`): the instrumented
      modules are loaded there and every analysis adds their counts. The summary then has
      `nodes:` (the covered nodes) and `node_errors:` (`%{node:, kind:, message:}` for each
      node that could not be covered, e.g. LiveCov is not on its code path).
    * `optimize: :coverage` (default) or `:full` - how instrumented code is compiled, see
      `LiveCov.Instrument.compile_options/1`: `:coverage` skips erl_lint and the
      optimisations whose cost grows with the bump calls (a third of the compile time),
      `:full` optimises the instrumented module like the original.
    * `cache: false`, `cache_dir: dir` - the instrumentation cache (`LiveCov.Cache`; on by
      default, or as configured).
    * `backend: :auto` (default, or `config :live_cov, backend: ...`), `:native` or `:nif` -
      what counts the bumps. `:native` is the runtime's own line counters, as `:cover` uses
      them on OTP 27+ with the JIT (an instruction the VM runs inline; LiveCov moves their
      growth into its table at every read and never resets them); `:nif` is a call into
      LiveCov's NIF table, on every runtime. `:auto` is `:native` where the runtime has
      native coverage, `:nif` elsewhere; `:native` is refused where it has none. The summary
      says which one counted (`backend:`), as do `status/0`, the agent's `/status` and every
      snapshot's provenance (label `backend`).

  Called by Mix as a `test_coverage` tool (`start(compile_path, opts)` with `tool: LiveCov` in
  `opts`) it returns the function Mix runs after the suite; see `LiveCov.MixTool`.
  """
  @spec start(target, keyword) :: summary | (() -> any) | nil | {:error, {atom, String.t()}}
  def start(target, opts \\ [])

  def start(compile_path, opts) when is_binary(compile_path) and is_list(opts) do
    if Keyword.get(opts, :tool) == __MODULE__,
      do: LiveCov.MixTool.start(compile_path, opts),
      else: Session.start(compile_path, opts)
  end

  def start(target, opts) when is_list(opts), do: Session.start(target, opts)

  @doc """
  Restores every instrumented module's original code and frees the counters. Processes still
  running instrumented code are never killed: they are listed under `:still_running` and move
  to the original code at their next fully qualified call. See `LiveCov.Pipeline.restore/1`
  for `:failed`.
  """
  @spec stop() :: %{
          restored: [module],
          still_running: [{module, [pid]}],
          failed: [{module, {atom, String.t()}}]
        }
  def stop, do: Session.stop()

  @doc """
  Like `stop/0` for part of what is instrumented: `target` is an application, a module or a
  list of them; its instrumented modules get their original code back (here and on covered
  nodes), the others stay instrumented and keep counting. Modules of `target` that are not
  instrumented are ignored.

      LiveCov.stop(:my_app)
      LiveCov.stop([MyApp.Router, MyApp.Repo])
  """
  @spec stop(atom | [atom]) :: %{
          restored: [module],
          still_running: [{module, [pid]}],
          failed: [{module, {atom, String.t()}}]
        }
  def stop(target), do: Session.stop(target)

  @doc """
  Zeroes every counter. In `mode: :coverage`, sites already removed from the code keep their
  counts (they ran, and nothing would count them again); see `LiveCov.Prune.reset/0`.
  """
  @spec reset() :: :ok
  def reset, do: Session.reset()

  @doc """
  Adaptive coverage (`mode: :coverage`): reloads every module with newly hit sites without
  them, now, and returns what was done (see `LiveCov.Prune.run/1`).
  """
  @spec prune() :: LiveCov.Prune.pass_summary() | {:error, {atom, String.t()}}
  def prune, do: LiveCov.Prune.run()

  @doc "What adaptive coverage recompiled, when, and what it is waiting for (`LiveCov.Prune.status/0`)."
  @spec prune_status() :: map | {:error, {atom, String.t()}}
  def prune_status, do: LiveCov.Prune.status()

  @doc """
  Which counter backend counts (`:native`, `:nif`, `:mixed` or `:none`), the one `:auto`
  picks on this runtime, the runtime, and what the harvests of native counters saw
  (`reset_elsewhere`: modules whose line counters another tool reset; `lost`: modules whose
  instrumented code somebody else replaced).

      LiveCov.status()
      #=> %{backend: :native, default_backend: :native, modules: 12,
      #     runtime: %{otp_release: 27, elixir: "1.18.3", native_coverage: true},
      #     harvest: %{harvests: 40, last_ms: 0.2, reset_elsewhere: %{}, lost: %{}}}
  """
  @spec status() :: map
  def status, do: Session.status()

  @doc """
  One map per instrumented module: `module`, `md5` (of the original beam), `sites`, `mode`,
  `backend`, `source`, `instrumented_at` (ms since the epoch); with `counts: true` also `hit`
  (sites hit, counting covered nodes and imported data).

      LiveCov.instrumented(counts: true)
      #=> [%{module: MyApp.Calc, sites: 12, hit: 9, mode: :counts, backend: :native, ...}]
  """
  @spec instrumented(keyword) :: [map]
  def instrumented(opts \\ []), do: Report.instrumented(opts)

  @doc "Instrumented modules."
  @spec modules() :: [module]
  def modules, do: Enum.map(Instrumented.modules(), & &1.module)

  @doc """
  Line data of every instrumented module, as `LiveCov.Stats.build/2` takes it: source path,
  per-line counts (a line's count is the largest count of the bump sites on it; line 0 is
  left out) and per-function entry counts. `exact` is false for modules in `mode: :coverage`,
  whose counts are lower bounds; `pruned_lines` are lines whose bumps were removed after they
  ran (reports can show them as "hit").
  """
  @spec module_data(keyword) :: [Stats.module_data()]
  def module_data(opts \\ []), do: Report.module_data(opts)

  @doc """
  The coverage report: `%LiveCov.Stats{coverage:, sloc:, hits:, misses:, files: [...]}`.

  Options (see `LiveCov.Stats.build/2`): `compile_root:` and `runtime_root:` map where sources
  were compiled to where they are now; `ignore_modules:`, `skip_files:`, `root:`.
  """
  @spec report(keyword) :: Stats.t() | {:error, {atom, String.t()}}
  def report(opts \\ []), do: Report.build(opts)

  @doc "Total line coverage in percent, one decimal."
  @spec total_coverage(keyword) :: float | {:error, {atom, String.t()}}
  def total_coverage(opts \\ []), do: Report.total_coverage(opts)

  @doc """
  Writes several report formats to `dir` from one snapshot of the counters, e.g.
  `LiveCov.write([:html, :lcov, :cobertura], "cover")`. Returns `{:ok, paths}`.
  Formats: #{LiveCov.Formats.formats() |> Map.keys() |> Enum.sort() |> Enum.map_join(", ", &"`#{inspect(&1)}`")}.
  """
  @spec write([atom], Path.t(), keyword) :: {:ok, [Path.t()]} | {:error, {atom, String.t()}}
  def write(formats, dir, opts \\ []), do: Report.write(formats, dir, opts)

  # On a node covered by another node (see LiveCov.Nodes) these answer
  # {:error, {:not_main_node, message}}.
  LiveCov.MainNode.main_node_only(
    [start: 2, stop: 0, stop: 1, reset: 0, prune: 0, report: 1, total_coverage: 1, write: 3],
    :message
  )

  ## Snapshots, export and import (LiveCov.Snapshot, LiveCov.Imported)

  @doc """
  A snapshot of this node's counters, in memory (`LiveCov.Snapshot`). Options: `labels:`
  (provenance labels, e.g. `[run: "17", git: "abc"]`), `modules:`, `counts: :all` (add
  covered nodes and imported data, as reports see them), `take: true` (see
  `dump_and_reset/1`).
  """
  @spec snapshot(keyword) :: LiveCov.Snapshot.t()
  def snapshot(opts \\ []), do: LiveCov.Capture.build(opts)

  @doc """
  Writes a snapshot to `path` (LiveCov's snapshot format; options as `snapshot/1`).
  Returns `{:ok, %{path:, bytes:, modules:, content_hash:}}`.
  """
  @spec export(Path.t(), keyword) :: {:ok, map} | {:error, {atom, String.t()}}
  def export(path, opts \\ []), do: LiveCov.Snapshot.write(LiveCov.Capture.build(opts), path)

  @doc """
  Imports a snapshot file (or a cover `.coverdata` file): its counts add to those of the
  same builds here. The same data twice is refused (`:already_imported`), by content, not
  by file name. See `LiveCov.Imported`.
  """
  @spec import(Path.t()) :: {:ok, map} | {:error, {atom, String.t()}}
  def import(path), do: LiveCov.Imported.import_file(path)

  @doc """
  Reads and zeroes every counter in one step and returns what was read as a snapshot: no
  bump is lost or counted twice while other processes keep bumping. Options as `snapshot/1`
  (`counts:` is always `:local`: only this node's table is reset). Summing the dumps gives
  the counts since the start. In `mode: :coverage` the frozen counters of removed sites are
  dumped and zeroed too (they ran before this dump and are in it).

  With `key: token` (a fresh random token per dump), a retry with the same token returns
  the same snapshot instead of dumping again, so a dump whose answer was lost in transit is
  not lost (`LiveCov.Dumps`: the last 8 keyed dumps, 15 minutes each).
  """
  @spec dump_and_reset(keyword) :: LiveCov.Snapshot.t()
  def dump_and_reset(opts \\ []) do
    case Keyword.pop(opts, :key) do
      {nil, opts} -> LiveCov.Dumps.dump(opts)
      {key, opts} -> key |> LiveCov.Dumps.take(opts) |> elem(1)
    end
  end

  @doc "What ran between two snapshots (`LiveCov.Snapshot.delta/2`)."
  @spec delta(LiveCov.Snapshot.t(), LiveCov.Snapshot.t()) :: LiveCov.Snapshot.t()
  def delta(before, later), do: LiveCov.Snapshot.delta(before, later)

  ## Publishing (LiveCov.Publish)

  @doc """
  Posts this node's coverage as Coveralls JSON to `url`, with bounded retries (exponential
  backoff) and a clear `{:error, {:refused, message}}` when the endpoint refuses it. Options:
  report options as `report/1`, Coveralls fields, `extra:`, `headers:`, `encoding:`,
  `retries:`; see `LiveCov.Publish`. Returns `{:ok, %{status:, body:, attempts:, bytes:}}`.
  """
  @spec publish(String.t(), keyword) :: {:ok, map} | {:error, {atom, String.t()}}
  def publish(url, opts \\ []), do: LiveCov.Publish.publish(url, opts)
end
