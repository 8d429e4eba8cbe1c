defmodule LiveCov.Test.Oracle do
  @moduledoc """
  The `:cover` oracle: runs the same workload once under OTP's `:cover` and
  once under `LiveCov.Cover` and returns both results, normalised so they can
  be compared with `==`.

  Fixture sources live in `test/fixtures/oracle/` (Erlang in `erlang/`, Elixir
  in `elixir/`, the uninstrumented driver in `workload/`). `build!/1` compiles
  them with debug info into a fresh temporary directory, puts that directory
  first in the code path and loads every fixture module from there. `run/2`
  drives one backend (`:cover` or `LiveCov.Cover`, which share one API) through
  start, compile, workload, every analysis form, reset, errors and stop.

  ## Normalisation

  Everything is compared exactly except where `:cover` itself does not fix an
  order:

    * line-level lists are sorted (cover's order of duplicate lines is the ETS
      order);
    * lists spanning several modules (`analyse(:_ ...)`, `analyse([m, ...])`)
      are stably sorted by module, keeping cover's order inside each module
      (cover collects modules in parallel, in ETS and process-exit order);
    * `compile_beam_directory/0,1` results and `modules/0` are sorted (cover
      compiles in parallel and records modules in completion order);
    * `start/0`'s `{:ok, pid}` becomes `{:ok, :pid}`.
  """

  @fixtures Path.expand("../fixtures/oracle", __DIR__)

  @erlang_modules [:oracle_erl_control, :oracle_erl_data]
  @maybe_module :oracle_erl_maybe
  @elixir_modules [
    LiveCovOracle.CounterServer,
    LiveCovOracle.Flow,
    LiveCovOracle.MacroUser,
    LiveCovOracle.MacroUser2,
    LiveCovOracle.Macros,
    LiveCovOracle.Shape,
    LiveCovOracle.Shape.Any,
    LiveCovOracle.Shape.LiveCovOracle.Shapes.Circle,
    LiveCovOracle.Shape.LiveCovOracle.Shapes.Rect,
    LiveCovOracle.Shapes.Circle,
    LiveCovOracle.Shapes.Rect
  ]
  @workload LiveCovOracle.Workload
  # The module `reset/1` is tried on.
  @reset_module :oracle_erl_control

  @analyses [:calls, :coverage]
  @levels [:module, :function, :clause, :line]

  # Loaded or compiled nowhere by the oracle: the error cases use them.
  @not_compiled [:lists, :oracle_no_such_module]

  defmodule Build do
    @moduledoc "A compiled fixture corpus (see `LiveCov.Test.Oracle.build!/1`)."
    defstruct [
      :root,
      :dir,
      :workload_dir,
      :modules,
      :beams,
      :maybe?,
      versioned: [],
      warnings: []
    ]

    @type t :: %__MODULE__{
            root: String.t(),
            dir: String.t(),
            workload_dir: String.t(),
            modules: [module()],
            beams: %{module() => charlist()},
            maybe?: boolean(),
            versioned: [module()],
            warnings: list()
          }
  end

  @doc """
  The backend compared against `:cover`: `LiveCov.Cover`, or `:cover` itself when
  `LIVE_COV_ORACLE_BACKEND=cover` (checks the oracle is deterministic).
  """
  def live_backend do
    case System.get_env("LIVE_COV_ORACLE_BACKEND") do
      "cover" -> :cover
      _ -> LiveCov.Cover
    end
  end

  @doc "Analysis kinds, in the order the tests use them."
  def analyses, do: @analyses

  @doc "Analysis levels, in the order the tests use them."
  def levels, do: @levels

  @doc "Where the fixture sources are."
  def fixtures_root, do: @fixtures

  @doc "True when the runtime may load modules using `maybe` (OTP 25 needs `-enable-feature maybe_expr`)."
  def maybe_enabled? do
    Code.ensure_loaded?(:erl_features) and :maybe_expr in :erl_features.enabled()
  end

  @doc """
  The fixture modules the corpus defines (the instrumented ones), sorted.
  `oracle_erl_maybe` is included only when `maybe_enabled?/0`; the versioned fixtures
  (`versioned/0`) only on the runtimes whose `:cover` instruments them.
  """
  def fixture_modules(maybe? \\ maybe_enabled?()) do
    Enum.sort(
      @erlang_modules ++
        if(maybe?, do: [@maybe_module], else: []) ++ versioned() ++ @elixir_modules
    )
  end

  @doc """
  The Erlang fixtures with a `%% live_cov: min_otp N[, cover_min_otp M]` header that are in
  the corpus on this runtime: the forms of OTP N (map comprehensions, strict and zip
  generators, multi-valued templates, ...) compile from N on, and the oracle compares them
  from M on (default N: where the runtime's `:cover` can instrument them).
  """
  def versioned do
    for {mod, min, cover_min} <- versioned_headers(),
        release() >= min and release() >= cover_min,
        do: mod
  end

  @doc "`[{module, min_otp, cover_min_otp}]` of every versioned Erlang fixture."
  def versioned_headers do
    for src <- Path.wildcard(Path.join([@fixtures, "erlang", "*.erl"])),
        header = src |> File.read!() |> String.split("\n", parts: 2) |> hd(),
        [_, min | rest] <- [
          Regex.run(~r/^%% live_cov: min_otp (\d+)(?:, cover_min_otp (\d+))?/, header)
        ] do
      min = String.to_integer(min)
      cover_min = if rest == [], do: min, else: String.to_integer(hd(rest))
      {src |> Path.basename(".erl") |> String.to_atom(), min, cover_min}
    end
    |> Enum.sort()
  end

  @doc "The running OTP release (25, 27, ...)."
  def release, do: LiveCov.Runtime.otp_release()

  @doc "The module the scenario resets with `reset/1`."
  def reset_module, do: @reset_module

  @doc "Modules that are never cover compiled (used for the error cases)."
  def not_compiled, do: @not_compiled

  # ---------------------------------------------------------------------------
  # Build
  # ---------------------------------------------------------------------------

  @doc """
  Compiles the fixture corpus into a fresh directory under `root` and loads it.

  Erlang fixtures are compiled with `:compile.file/2` (`debug_info`, include
  dir), Elixir fixtures with `Kernel.ParallelCompiler.compile_to_path/3` (debug
  info forced on). The workload module goes to a separate directory so that
  `compile_beam_directory(dir)` only sees fixtures. Raises on any compile error.
  """
  def build!(
        root \\ Path.join(
          System.tmp_dir!(),
          "live_cov_oracle_#{System.pid()}_#{System.unique_integer([:positive])}"
        )
      ) do
    do_build!(root)
  rescue
    e ->
      File.rm_rf(root)
      reraise e, __STACKTRACE__
  end

  defp do_build!(root) do
    dir = Path.join(root, "ebin")
    workload_dir = Path.join(root, "workload")
    File.rm_rf!(root)
    File.mkdir_p!(dir)
    File.mkdir_p!(workload_dir)

    maybe? = maybe_enabled?()
    purge(fixture_modules(true) ++ Enum.map(versioned_headers(), &elem(&1, 0)) ++ [@workload])

    erl_warnings = compile_erlang!(dir, maybe?)
    ex_warnings = compile_elixir!(Path.wildcard(Path.join([@fixtures, "elixir", "*.ex"])), dir)
    true = :code.add_patha(String.to_charlist(dir))

    modules = fixture_modules(maybe?)
    beams = Map.new(modules, &{&1, beam_path(dir, &1)})
    on_disk = dir |> File.ls!() |> Enum.filter(&String.ends_with?(&1, ".beam")) |> Enum.sort()
    expected = modules |> Enum.map(&"#{&1}.beam") |> Enum.sort()

    if on_disk != expected do
      raise "oracle fixture set changed: on disk #{inspect(on_disk)}, expected #{inspect(expected)}"
    end

    build = %Build{
      root: root,
      dir: dir,
      workload_dir: workload_dir,
      modules: modules,
      beams: beams,
      maybe?: maybe?,
      versioned: versioned()
    }

    load_originals!(build)

    wl_warnings =
      compile_elixir!([Path.join([@fixtures, "workload", "workload.ex"])], workload_dir)

    true = :code.add_patha(String.to_charlist(workload_dir))
    reload!(@workload, Path.join(workload_dir, "#{@workload}"))
    %{build | warnings: erl_warnings ++ ex_warnings ++ wl_warnings}
  end

  @doc """
  Replaces the value of every `{key, value}` pair whose key is in `keys` by
  `:known_difference`, anywhere in `term` (keys themselves are not walked), so results can
  be compared everywhere else.
  """
  def mask(term, keys), do: do_mask(term, MapSet.new(keys))

  defp do_mask({k, v}, keys) do
    if MapSet.member?(keys, k), do: {k, :known_difference}, else: {k, do_mask(v, keys)}
  end

  defp do_mask(list, keys) when is_list(list), do: Enum.map(list, &do_mask(&1, keys))

  defp do_mask(map, keys) when is_map(map) and not is_struct(map),
    do: Map.new(map, fn {k, v} -> {k, do_mask(v, keys)} end)

  defp do_mask(tuple, keys) when is_tuple(tuple),
    do: tuple |> Tuple.to_list() |> do_mask(keys) |> List.to_tuple()

  defp do_mask(other, _keys), do: other

  @doc """
  The clause-level `:calls` entries where `live` counts differ from `cover`'s:
  `[{clause_key, cover_count, live_count}]`, sorted.
  """
  def clause_count_differences(cover, live) do
    for {{m, :calls, :clause}, {:ok, expected}} <- cover.analyse,
        {:ok, got} = Map.fetch!(live.analyse, {m, :calls, :clause}),
        {{k, a}, {k, b}} <- Enum.zip(expected, got),
        a != b do
      {k, a, b}
    end
    |> Enum.sort()
  end

  @doc "Unloads the corpus and removes the build directory."
  def cleanup(%Build{} = build) do
    stop_quietly(:cover)
    purge(build.modules ++ [@workload])
    :code.del_path(String.to_charlist(build.dir))
    :code.del_path(String.to_charlist(build.workload_dir))
    File.rm_rf(build.root)
    :ok
  end

  defp compile_erlang!(dir, maybe?) do
    include = Path.join([@fixtures, "erlang", "include"])

    headers = Map.new(versioned_headers(), fn {m, min, _} -> {m, min} end)
    in_corpus = versioned()

    for src <- Path.wildcard(Path.join([@fixtures, "erlang", "*.erl"])),
        mod = src |> Path.basename(".erl") |> String.to_atom(),
        release() >= Map.get(headers, mod, 0),
        reduce: [] do
      acc ->
        write? =
          cond do
            mod == @maybe_module -> maybe?
            Map.has_key?(headers, mod) -> mod in in_corpus
            true -> true
          end

        opts = [
          :debug_info,
          :return_errors,
          :return_warnings,
          :binary,
          {:i, String.to_charlist(include)}
        ]

        case :compile.file(String.to_charlist(src), opts) do
          {:ok, ^mod, bin, warnings} ->
            if write?, do: File.write!(Path.join(dir, "#{mod}.beam"), bin)
            acc ++ warnings

          other ->
            raise "oracle: cannot compile #{src}: #{inspect(other)}"
        end
    end
  end

  defp compile_elixir!(files, dir) do
    {_modules, warnings} = LiveCov.Test.ElixirBuild.compile_to_path!(files, dir)
    warnings
  end

  defp beam_path(dir, mod), do: String.to_charlist(Path.join(dir, "#{mod}.beam"))

  @doc "Makes sure every fixture module runs its original (uninstrumented) beam from the build dir."
  def load_originals!(%Build{} = build) do
    for {mod, path} <- build.beams do
      if :code.which(mod) != path do
        reload!(mod, path |> to_string() |> Path.rootname(".beam"))
      end
    end

    :ok
  end

  defp reload!(mod, abs_no_ext) do
    purge([mod])

    case :code.load_abs(String.to_charlist(abs_no_ext)) do
      {:module, ^mod} -> :ok
      other -> raise "oracle: cannot load #{inspect(mod)} from #{abs_no_ext}: #{inspect(other)}"
    end
  end

  defp purge(mods) do
    for m <- mods do
      :code.purge(m)
      :code.delete(m)
      :code.purge(m)
    end
  end

  @doc "Stops a backend if it runs, ignoring the result."
  def stop_quietly(:cover) do
    if Process.whereis(:cover_server), do: :cover.stop()
    :ok
  end

  def stop_quietly(backend) do
    if Code.ensure_loaded?(backend) and function_exported?(backend, :stop, 0) do
      try do
        backend.stop()
      catch
        _, _ -> :ok
      end
    end

    :ok
  end

  # ---------------------------------------------------------------------------
  # Running a backend
  # ---------------------------------------------------------------------------

  @doc """
  Runs both backends, `:cover` first, and returns `%{cover: result, live_cov: result}`.
  A crash in a backend is captured as `%{crashed: formatted_exception}`.
  """
  def run_both(%Build{} = build, live \\ live_backend()) do
    cover = safe_run(:cover, build)
    live = safe_run(live, build)
    %{cover: cover, live_cov: live}
  end

  defp safe_run(backend, build) do
    run(backend, build)
  rescue
    e -> crashed(backend, build, Exception.format(:error, e, __STACKTRACE__))
  catch
    kind, reason -> crashed(backend, build, Exception.format(kind, reason, __STACKTRACE__))
  end

  defp crashed(backend, build, text) do
    stop_quietly(backend)
    load_originals!(build)
    %{crashed: text}
  end

  @doc """
  Runs the whole oracle scenario with `backend` (`:cover` or a module with the
  same API) and returns a map of normalised results:

    * `:start`, `:compile` (one `compile_beam/1` per beam), `:modules`, `:is_compiled`
    * `:workload` — the workload's return value
    * `:analyse` — `%{{module, analysis, level} => result}` for every fixture module
    * `:forms` — the `analyse/0,1,2,3` short forms, list and `:_` forms
    * `:errors` — calls on modules that were never compiled
    * `:reset_one` / `:reset_all` — full analysis after `reset(m)` / `reset()`
    * `:rerun` — full analysis after running the workload again following the reset
    * `:stop` and `:restored` — whether every module runs its original beam again
  """
  def run(backend, %Build{} = build) do
    stop_quietly(backend)
    load_originals!(build)
    mods = build.modules

    start = norm_start(call(backend, :start, []))

    compile = for m <- mods, do: {m, call(backend, :compile_beam, [Map.fetch!(build.beams, m)])}

    modules = sort_if_list(call(backend, :modules, []))
    is_compiled = Map.new(mods ++ @not_compiled, &{&1, call(backend, :is_compiled, [&1])})

    workload = workload(build)
    analyse = analyse_all(backend, mods)
    forms = forms(backend, mods)
    errors = errors(backend, mods)

    first = @reset_module
    reset_one_result = call(backend, :reset, [first])
    reset_one = analyse_all(backend, mods)
    reset_all_result = call(backend, :reset, [])
    reset_all = analyse_all(backend, mods)

    rerun_workload = workload(build)
    rerun = analyse_all(backend, mods)

    stop = call(backend, :stop, [])
    restored = Map.new(mods, &{&1, :code.which(&1) == Map.fetch!(build.beams, &1)})
    load_originals!(build)

    %{
      start: start,
      compile: compile,
      modules: modules,
      is_compiled: is_compiled,
      workload: workload,
      analyse: analyse,
      forms: forms,
      errors: errors,
      reset_one: {first, reset_one_result, reset_one},
      reset_all: {reset_all_result, reset_all},
      rerun: {rerun_workload, rerun},
      stop: stop,
      restored: restored
    }
  end

  @doc """
  Runs `compile_beam_directory/1` on the fixture dir and `compile_beam_directory/0`
  with the fixture dir as cwd, plus the missing-directory error, under `backend`.
  """
  def run_directory(backend, %Build{} = build) do
    stop_quietly(backend)
    load_originals!(build)
    dir = String.to_charlist(build.dir)

    start = norm_start(call(backend, :start, []))
    dir1 = sort_if_list(call(backend, :compile_beam_directory, [dir]))
    modules1 = sort_if_list(call(backend, :modules, []))
    analysis1 = norm_multi(call(backend, :analyse, [:_, :coverage, :function]), :function)

    missing =
      call(backend, :compile_beam_directory, [
        String.to_charlist(Path.join(build.root, "missing"))
      ])

    stop1 = call(backend, :stop, [])
    load_originals!(build)

    # compile_beam/1 with a list (a path twice, a module atom, a missing module).
    [p1, p2 | _] = Enum.map(build.modules, &Map.fetch!(build.beams, &1))
    [_, _, m3 | _] = build.modules
    start_list = norm_start(call(backend, :start, []))

    list_result =
      sort_if_list(call(backend, :compile_beam, [[p1, p2, p1, m3, :oracle_no_such_module]]))

    modules_list = sort_if_list(call(backend, :modules, []))
    stop_list = call(backend, :stop, [])
    load_originals!(build)

    start2 = norm_start(call(backend, :start, []))
    old_cwd = File.cwd!()

    dir0 =
      try do
        File.cd!(build.dir)
        sort_if_list(call(backend, :compile_beam_directory, []))
      after
        File.cd!(old_cwd)
      end

    modules0 = sort_if_list(call(backend, :modules, []))
    stop2 = call(backend, :stop, [])
    restored = Map.new(build.modules, &{&1, :code.which(&1) == Map.fetch!(build.beams, &1)})
    load_originals!(build)

    %{
      start: start,
      compile_beam_directory_1: dir1,
      modules_1: modules1,
      analyse_all_function: analysis1,
      missing_dir: missing,
      stop_1: stop1,
      start_list: start_list,
      compile_beam_list: list_result,
      modules_list: modules_list,
      stop_list: stop_list,
      start_2: start2,
      compile_beam_directory_0: dir0,
      modules_0: modules0,
      stop_2: stop2,
      restored: restored
    }
  end

  # One backend call. A raise/throw/exit is captured as `{:oracle_crash, text}` so
  # that one broken call is reported where it happens instead of losing the run.
  defp call(backend, fun, args) do
    apply(backend, fun, args)
  rescue
    e -> {:oracle_crash, crash_text(backend, fun, args, :error, e, __STACKTRACE__)}
  catch
    kind, reason -> {:oracle_crash, crash_text(backend, fun, args, kind, reason, __STACKTRACE__)}
  end

  defp crash_text(backend, fun, args, kind, reason, stack) do
    "#{inspect(backend)}.#{fun}(#{Enum.map_join(args, ", ", &inspect/1)}) " <>
      Exception.format(kind, reason, Enum.take(stack, 5))
  end

  defp workload(build) do
    apply(@workload, :run, [build.maybe?, build.versioned])
  rescue
    e -> {:oracle_crash, "workload " <> Exception.format(:error, e, __STACKTRACE__)}
  catch
    kind, reason -> {:oracle_crash, "workload " <> Exception.format(kind, reason, __STACKTRACE__)}
  end

  defp analyse_all(backend, mods) do
    for m <- mods, a <- @analyses, l <- @levels, into: %{} do
      {{m, a, l}, norm_one(call(backend, :analyse, [m, a, l]), l)}
    end
  end

  # Every analyse/0,1,2,3 form except the per-module 3-arity ones.
  defp forms(backend, mods) do
    [m1, m2 | _] = mods
    two = [m1, m2]
    with_missing = [m1, :oracle_no_such_module, m2, :lists]
    with_duplicates = [m2, m1, m2, :lists, :lists]

    single =
      for m <- mods, into: [] do
        [
          {{:analyse_1, m}, norm_one(call(backend, :analyse, [m]), :function)},
          {{:analyse_2, m, :calls}, norm_one(call(backend, :analyse, [m, :calls]), :function)},
          {{:analyse_2, m, :coverage},
           norm_one(call(backend, :analyse, [m, :coverage]), :function)}
        ] ++
          for l <- @levels do
            {{:analyse_2, m, l}, norm_one(call(backend, :analyse, [m, l]), l)}
          end
      end

    general =
      [{:analyse_0, norm_multi(call(backend, :analyse, []), :function)}] ++
        for(
          a <- @analyses,
          do: {{:analyse_1, a}, norm_multi(call(backend, :analyse, [a]), :function)}
        ) ++
        for(l <- @levels, do: {{:analyse_1, l}, norm_multi(call(backend, :analyse, [l]), l)}) ++
        for a <- @analyses, l <- @levels do
          [
            {{:analyse_2, a, l}, norm_multi(call(backend, :analyse, [a, l]), l)},
            {{:analyse_3, :_, a, l}, norm_multi(call(backend, :analyse, [:_, a, l]), l)},
            {{:analyse_3, :list2, a, l}, norm_multi(call(backend, :analyse, [two, a, l]), l)},
            {{:analyse_3, :list_with_missing, a, l},
             norm_multi(call(backend, :analyse, [with_missing, a, l]), l)},
            {{:analyse_3, :list_with_duplicates, a, l},
             norm_multi(call(backend, :analyse, [with_duplicates, a, l]), l)}
          ]
        end ++
        [
          {{:analyse_1, :list2}, norm_multi(call(backend, :analyse, [two]), :function)},
          {{:analyse_1, :all_mods}, norm_multi(call(backend, :analyse, [mods]), :function)},
          {{:analyse_1, :_}, norm_multi(call(backend, :analyse, [:_]), :function)},
          {{:analyse_2, :_, :calls},
           norm_multi(call(backend, :analyse, [:_, :calls]), :function)},
          {{:analyse_2, :_, :line}, norm_multi(call(backend, :analyse, [:_, :line]), :line)},
          {{:analyse_2, :list2, :clause},
           norm_multi(call(backend, :analyse, [two, :clause]), :clause)},
          {{:analyse_1, :empty_list}, norm_multi(call(backend, :analyse, [[]]), :function)},
          {{:analyse_3, :only_missing, :calls, :line},
           norm_multi(call(backend, :analyse, [[:oracle_no_such_module], :calls, :line]), :line)}
        ]

    Map.new(List.flatten(single ++ general))
  end

  defp errors(backend, _mods) do
    for m <- @not_compiled, into: %{} do
      {m,
       %{
         analyse_1: call(backend, :analyse, [m]),
         analyse_2_calls: call(backend, :analyse, [m, :calls]),
         analyse_2_line: call(backend, :analyse, [m, :line]),
         analyse_3: for(a <- @analyses, l <- @levels, do: call(backend, :analyse, [m, a, l])),
         reset_1: call(backend, :reset, [m]),
         is_compiled: call(backend, :is_compiled, [m])
       }}
    end
    |> Map.put(
      :compile_beam_missing_module,
      call(backend, :compile_beam, [:oracle_no_such_module])
    )
  end

  # ---------------------------------------------------------------------------
  # Normalisation
  # ---------------------------------------------------------------------------

  defp norm_start({:ok, pid}) when is_pid(pid), do: {:ok, :pid}

  defp norm_start({:error, {:already_started, pid}}) when is_pid(pid),
    do: {:error, {:already_started, :pid}}

  defp norm_start(other), do: other

  defp sort_if_list(list) when is_list(list), do: Enum.sort(list)
  defp sort_if_list(other), do: other

  @doc "Normalises a single-module `analyse/3` answer at `level`."
  def norm_one({:ok, list}, :line) when is_list(list), do: {:ok, Enum.sort(list)}
  def norm_one(other, _level), do: other

  @doc "Normalises a `{:result, ok, fail}` answer at `level`."
  def norm_multi({:result, ok, fail}, :line) when is_list(ok), do: {:result, Enum.sort(ok), fail}

  def norm_multi({:result, ok, fail}, _level) when is_list(ok),
    do: {:result, Enum.sort_by(ok, &item_module/1), fail}

  def norm_multi(other, _level), do: other

  defp item_module({{m, _}, _}), do: m
  defp item_module({{m, _, _}, _}), do: m
  defp item_module({{m, _, _, _}, _}), do: m
  defp item_module({m, _}), do: m

  # ---------------------------------------------------------------------------
  # Comparison
  # ---------------------------------------------------------------------------

  @doc """
  Lists every difference between two results as `{path, expected, got}`,
  descending into maps, keyword-like lists of equal length and tuples of
  equal size so the path names the exact spot.
  """
  def diff(expected, got, path \\ [])
  def diff(same, same, _path), do: []

  def diff(%{} = e, %{} = g, path) when not is_struct(e) and not is_struct(g) do
    keys = Enum.uniq(Map.keys(e) ++ Map.keys(g))

    Enum.flat_map(keys, fn k ->
      diff(Map.get(e, k, :__missing__), Map.get(g, k, :__missing__), path ++ [k])
    end)
  end

  def diff(e, g, path) when is_tuple(e) and is_tuple(g) and tuple_size(e) == tuple_size(g) do
    e
    |> Tuple.to_list()
    |> Enum.zip(Tuple.to_list(g))
    |> Enum.with_index()
    |> Enum.flat_map(fn {{x, y}, i} -> diff(x, y, path ++ [{:elem, i}]) end)
  end

  def diff(e, g, path), do: [{path, e, g}]

  @doc """
  Like `diff/3` for two analysis item lists: reports items that are missing,
  extra or have a different value, keyed by the item.
  """
  def diff_items(expected, got) when is_list(expected) and is_list(got) do
    if expected == got do
      []
    else
      e = Enum.frequencies(expected)
      g = Enum.frequencies(got)
      missing = for {item, n} <- e, Map.get(g, item, 0) < n, do: {:missing, item}
      extra = for {item, n} <- g, Map.get(e, item, 0) < n, do: {:extra, item}

      case missing ++ extra do
        [] -> [{:order, expected, got}]
        list -> list
      end
    end
  end

  @doc """
  Human-readable report of a mismatch for assertion messages: both values
  (shortened when long) and the exact differences.
  """
  def explain(label, expected, got) do
    detail =
      case {expected, got} do
        {{:ok, e}, {:ok, g}} when is_list(e) and is_list(g) ->
          diff_items(e, g)

        {{:result, e, ef}, {:result, g, gf}} when is_list(e) and is_list(g) ->
          diff_items(e, g) ++ if(ef == gf, do: [], else: [{:fail, ef, gf}])

        _ ->
          diff(expected, got)
      end

    """
    #{label}: LiveCov.Cover differs from :cover
      :cover        #{short(expected)}
      LiveCov.Cover #{short(got)}
      differences   #{inspect(detail, limit: :infinity, printable_limit: 4000)}
    """
  end

  defp short(term) do
    text = inspect(term, limit: :infinity, printable_limit: 4000)
    if String.length(text) <= 1500, do: text, else: inspect(term, limit: 4) <> " (shortened)"
  end
end
