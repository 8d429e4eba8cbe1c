defmodule LiveCov.ExUnit do
  @moduledoc """
  Per-test coverage for ExUnit: which tests ran a given `file:line`.

  Each test records a reading of the counter table before it runs and another one when it
  has finished (in `on_exit`); the difference (`LiveCov.delta/2` at slot level) is what the
  test ran, stored per test.

      # test/test_helper.exs — after the code under test is instrumented
      # (mix test --cover with `test_coverage: [tool: LiveCov]`, or LiveCov.start(:my_app))
      LiveCov.ExUnit.start()
      ExUnit.start()

      # in a test module
      defmodule MyApp.CalcTest do
        use ExUnit.Case          # async: false for exact attribution (see below)
        use LiveCov.ExUnit       # or: setup context, do: LiveCov.ExUnit.record(context)
        ...
      end

      # after the suite, e.g. in ExUnit.after_suite/1 or from iex
      LiveCov.ExUnit.tests_covering("lib/my_app/calc.ex", 12)
      #=> [%{module: MyApp.CalcTest, test: :"test adds", file: "/src/lib/my_app/calc.ex", count: 3}]

  Attribution is by time: everything counted while a test runs is credited to it, so tests
  of `async: true` modules that run at the same time share what they ran. Use it with
  `async: false` modules (or `mix test --max-cases 1`) for exact per-test data.

  A test of a parameterized module (ExUnit 1.18+, `use ExUnit.Case, parameterize: [...]`)
  runs once per parameter map; each run is recorded apart, as `{module, test, parameters}`
  (`parameters:` in `tests_covering/2`, `covered_by/3`, `delta/3`), so the runs never
  overwrite each other.
  """

  alias LiveCov.{Analyse, Counter, Instrumented, Snapshot, Table, Util}

  @lines :live_cov_ex_unit_lines
  @tests :live_cov_ex_unit_tests
  @slots :live_cov_ex_unit_slots

  @type test_id :: {module, atom} | {module, atom, map}

  defmacro __using__(_opts) do
    quote do
      setup context, do: LiveCov.ExUnit.record(context)
    end
  end

  @doc "Starts the per-test store (idempotent; also done by the first `record/1`)."
  @spec start() :: :ok
  def start do
    {:ok, _} = Application.ensure_all_started(:live_cov)

    case Supervisor.start_child(LiveCov.Supervisor, __MODULE__.Store) do
      {:ok, _} -> :ok
      {:error, {:already_started, _}} -> :ok
      {:error, :already_present} -> restart()
    end
  end

  defp restart do
    case Supervisor.restart_child(LiveCov.Supervisor, __MODULE__.Store) do
      {:ok, _} -> :ok
      {:error, :running} -> :ok
      {:error, {:already_started, _}} -> :ok
    end
  end

  @doc """
  An ExUnit `setup` callback: reads the counters now and, when the test is over, stores
  what the test ran. Returns `:ok`.
  """
  @spec record(map) :: :ok
  def record(context), do: record(context, &ExUnit.Callbacks.on_exit/2)

  @doc false
  # `on_exit` registers the callback that runs when the test is over.
  def record(%{module: module, test: test} = context, on_exit) do
    if :ets.whereis(@tests) == :undefined, do: start()
    before = Counter.snapshot()
    id = test_id(module, test, parameters(context))
    on_exit.({__MODULE__, id}, fn -> finish(id, before) end)
    :ok
  end

  defp test_id(module, test, nil), do: {module, test}
  defp test_id(module, test, parameters), do: {module, test, parameters}

  # The parameter map of this run of a parameterized module (merged into the context by
  # ExUnit 1.18+; the module's config lists the maps), or nil.
  defp parameters(%{module: module} = context) do
    config =
      if function_exported?(module, :__ex_unit__, 1),
        do: module.__ex_unit__(:config),
        else: %{}

    case config do
      %{parameterize: [_ | _] = all} ->
        Enum.find(all, fn p -> is_map(p) and Map.take(context, Map.keys(p)) == p end)

      _ ->
        nil
    end
  rescue
    _ -> nil
  end

  @doc false
  def finish(id, before) do
    later = Counter.snapshot()

    deltas =
      for {slot, after_bin} <- later,
          before_bin = Map.get(before, slot),
          after_bin != before_bin,
          delta = slot_delta(after_bin, before_bin),
          delta != nil,
          into: %{},
          do: {slot, delta}

    store(id, deltas)
  end

  defp slot_delta(after_bin, nil), do: after_bin

  defp slot_delta(after_bin, before_bin) when byte_size(after_bin) == byte_size(before_bin) do
    case LiveCov.Native.counts_sub(after_bin, before_bin) do
      {:ok, d} -> d
      # Reset during the test: what ran since then.
      :reset -> after_bin
      {:error, _} -> nil
    end
  end

  defp slot_delta(_, _), do: nil

  defp store(id, deltas) do
    per_module =
      for {slot, delta} <- deltas, info = slot_info(slot), info != nil, reduce: %{} do
        acc ->
          counts = Table.decode(delta)
          lines = info |> Analyse.lines(counts) |> Map.filter(fn {_, n} -> n > 0 end)
          source = info.source && to_string(info.source)
          Map.put(acc, info.module, %{source: source, lines: lines, counts: delta})
      end

    by_file =
      Enum.reduce(per_module, %{}, fn {_m, %{source: s, lines: l}}, acc ->
        Map.update(acc, s, l, &Map.merge(&1, l, fn _, a, b -> max(a, b) end))
      end)

    :ets.insert(@tests, {id, %{files: by_file, modules: per_module}})

    :ets.insert(
      @lines,
      for({file, lines} <- by_file, {line, n} <- lines, do: {{file, line}, id, n})
    )

    :ok
  rescue
    # The store was stopped meanwhile: nothing to record into.
    ArgumentError -> :ok
  end

  defp slot_info(slot) do
    case :ets.lookup(@slots, slot) do
      [{_, info}] ->
        info

      [] ->
        # A module instrumented after the last refresh: refresh the slot map once.
        infos = Instrumented.modules()

        :ets.insert(@slots, for(i <- infos, do: {i.slot, slim(i)}))

        case Enum.find(infos, &(&1.slot == slot)) do
          nil -> nil
          i -> slim(i)
        end
    end
  end

  # What line analysis needs (not the beams).
  defp slim(info), do: %{info | original: nil, instrumented: nil, cache: nil}

  @doc """
  The tests that ran `file` at `line`: `[%{module:, test:, file:, count:}]` (plus
  `parameters:` for a run of a parameterized module), sorted. `file` is a source path as
  compiled (absolute) or a path relative to the project root (matched as a suffix).
  """
  @spec tests_covering(Path.t(), pos_integer) :: [map]
  def tests_covering(file, line) when is_integer(line) do
    file = to_string(file)

    @lines
    |> Util.ets_match_object({{:_, line}, :_, :_})
    |> Enum.filter(fn {{source, _}, _, _} -> same_file?(source, file) end)
    |> Enum.map(fn
      {{source, _}, {m, t}, n} -> %{module: m, test: t, file: source, count: n}
      {{source, _}, {m, t, p}, n} -> %{module: m, test: t, parameters: p, file: source, count: n}
    end)
    |> Enum.sort_by(&{&1.module, &1.test, Map.get(&1, :parameters), &1.file})
  end

  defp same_file?(nil, _), do: false

  defp same_file?(source, file) do
    source == file or source == Path.expand(file) or
      String.ends_with?(source, "/" <> Path.relative(file))
  end

  @doc """
  What one test ran (the run with `parameters` of a parameterized module):
  `%{source_file => %{line => count}}`, or `nil` if not recorded.
  """
  @spec covered_by(module, atom, map | nil) ::
          %{String.t() => %{pos_integer => pos_integer}} | nil
  def covered_by(module, test, parameters \\ nil) do
    case Util.ets_lookup(@tests, test_id(module, test, parameters)) do
      [{_, %{files: files}}] -> files
      [] -> nil
    end
  end

  @doc """
  What one test ran, as a `LiveCov.Snapshot` (the delta of its modules), or `nil`.
  """
  @spec delta(module, atom, map | nil) :: Snapshot.t() | nil
  def delta(module, test, parameters \\ nil) do
    case Util.ets_lookup(@tests, test_id(module, test, parameters)) do
      [{_, %{modules: mods}}] ->
        infos = mods |> Map.keys() |> Enum.map(&Instrumented.lookup/1) |> Enum.reject(&is_nil/1)
        {metas, _} = Snapshot.metas_of(infos)

        pairs =
          for {info, %Snapshot.Meta{hash: h} = meta} <- Enum.zip(infos, metas),
              h != nil,
              byte_size(mods[info.module].counts) == 8 * LiveCov.ModuleInfo.size(info),
              do: {meta, mods[info.module].counts}

        %Snapshot{
          provenance: [
            LiveCov.Capture.origin(
              labels: [test: test_label(module, test, parameters)],
              backend: Instrumented.backend_of(infos)
            )
          ],
          metas: Map.new(pairs, fn {m, _} -> {m.hash, m} end),
          counts: Map.new(pairs, fn {m, c} -> {m.hash, c} end)
        }

      [] ->
        nil
    end
  end

  defp test_label(module, test, nil), do: "#{inspect(module)} #{test}"
  defp test_label(module, test, p), do: "#{inspect(module)} #{test} #{inspect(p)}"

  @doc """
  Every recorded test: `%{{module, test} => %{source_file => %{line => count}}}` (the key
  of a run of a parameterized module is `{module, test, parameters}`).
  """
  @spec results() :: %{test_id => map}
  def results, do: @tests |> Util.ets_tab2list() |> Map.new(fn {id, %{files: f}} -> {id, f} end)

  @doc "Forgets every recorded test."
  @spec clear() :: :ok
  def clear do
    for t <- [@lines, @tests, @slots],
        :ets.whereis(t) != :undefined,
        do: :ets.delete_all_objects(t)

    :ok
  end

  defmodule Store do
    @moduledoc false
    # Owns the per-test tables (public: on_exit callbacks write them directly).
    use GenServer

    def start_link(_), do: GenServer.start_link(__MODULE__, nil, name: __MODULE__)

    def child_spec(arg), do: %{id: __MODULE__, start: {__MODULE__, :start_link, [arg]}}

    @impl true
    def init(nil) do
      opts = [:named_table, :public, write_concurrency: true, read_concurrency: true]
      :ets.new(:live_cov_ex_unit_lines, [:bag | opts])
      :ets.new(:live_cov_ex_unit_tests, [:set | opts])
      :ets.new(:live_cov_ex_unit_slots, [:set | opts])
      {:ok, nil}
    end
  end
end
