defmodule LiveCov.Cover do
  @moduledoc """
  A drop-in for OTP's `:cover`, backed by LiveCov's NIF counter table.

  Same argument forms, same return values as `:cover` (OTP 25) for the same workload:

      LiveCov.Cover.start()
      LiveCov.Cover.compile_beam(MyMod)           #=> {:ok, MyMod}
      MyMod.run()
      LiveCov.Cover.analyse(MyMod, :calls, :line) #=> {:ok, [{{MyMod, 12}, 1}, ...]}
      LiveCov.Cover.stop()

  Differences, all on the safe side:

  * `stop/0` reloads each module's original code instead of deleting it, and never kills a
    process still running instrumented code (see `LiveCov.stop/0` for who still runs it).
  * Modules `:cover` would break are refused with `{:error, {kind, message}}`: NIF modules
    (reloading unloads their library), sticky and preloaded modules, LiveCov's own modules.
  """

  alias LiveCov.{Analyse, Counts, Coverdata, Instrumented, Pipeline}

  require LiveCov.MainNode

  @analyses [:calls, :coverage]
  @levels [:module, :function, :clause, :line]

  @doc "Starts the service. `{:ok, pid}`, or `{:error, {:already_started, pid}}`."
  def start do
    {:ok, _} = Application.ensure_all_started(:live_cov)
    Pipeline.mark_started()
  end

  @doc """
  Instruments a module (atom), a beam file (charlist or string, `.beam` optional) or a list of
  them. A single target gives `{:ok, module}` or `{:error, reason}`; a list gives a list.

  `opts` (LiveCov's, not `:cover`'s): `backend: :auto | :native | :nif`, as for
  `LiveCov.start/2` (default `:auto`, or `config :live_cov, backend: ...`); a bad value is
  one `{:error, {kind, message}}` for the whole call.

      LiveCov.Cover.compile_beam(MyMod)                   #=> {:ok, MyMod}
      LiveCov.Cover.compile_beam(MyMod, backend: :nif)    #=> {:ok, MyMod}
  """
  def compile_beam(target), do: compile_beam(target, [])

  def compile_beam(target, opts)
      when is_atom(target) or (is_list(target) and is_integer(hd(target))) do
    case compile_beams([target], opts) do
      [{:error, {:non_existing, _}}] -> {:error, :non_existing}
      [result] -> result
      {:error, _} = option_error -> option_error
    end
  end

  def compile_beam(target, opts) when is_binary(target),
    do: compile_beam(String.to_charlist(target), opts)

  def compile_beam(targets, opts) when is_list(targets), do: compile_beams(targets, opts)

  @doc "Instruments every `.beam` in the current directory."
  def compile_beam_directory do
    with {:ok, dir} <- File.cwd(), do: compile_beam_directory(dir)
  end

  @doc """
  Instruments every `.beam` in `dir` (`opts` as for `compile_beam/2`). `{:error, posix}` when
  the directory can't be read.
  """
  def compile_beam_directory(dir), do: compile_beam_directory(dir, [])

  def compile_beam_directory(dir, opts) do
    dir = to_charlist(dir)

    case :file.list_dir(dir) do
      {:ok, files} ->
        files
        |> Enum.filter(&(:filename.extension(&1) == ~c".beam"))
        |> Enum.map(&:filename.join(dir, &1))
        |> compile_beams(opts)

      error ->
        error
    end
  end

  # An option error is the call's, once, whatever the targets.
  defp compile_beams(targets, opts) do
    {:ok, _} = Application.ensure_all_started(:live_cov)

    with {:ok, backend} <- LiveCov.Counter.resolve(opts[:backend]) do
      resolved = targets |> Enum.map(&resolve/1) |> dedupe([])
      todo = for {:ok, _module, target} <- resolved, do: target
      fill(resolved, Pipeline.instrument(todo, backend: backend), [])
    end
  end

  # Put the registry's results (in `todo` order) back among the resolution errors.
  defp fill([{:ok, _, _} | rest], [result | results], acc),
    do: fill(rest, results, [shape(result) | acc])

  defp fill([error | rest], results, acc), do: fill(rest, results, [error | acc])
  defp fill([], [], acc), do: Enum.reverse(acc)

  defp shape({:ok, module}), do: {:ok, module}
  defp shape({:error, target, reason}), do: cover_error(target_file(target), reason)

  defp target_file(module) when is_atom(module), do: :code.which(module)
  defp target_file(file), do: file

  defp resolve(module) when is_atom(module) do
    case :code.which(module) do
      :non_existing -> {:error, {:non_existing, module}}
      _ -> {:ok, module, module}
    end
  end

  defp resolve(file) when is_list(file) or is_binary(file) do
    file = to_charlist(file)
    root = :filename.rootname(file, ~c".beam")
    with_ext = if root == file, do: file ++ ~c".beam", else: file
    {:ok, List.to_atom(:filename.basename(root)), :filename.absname(with_ext)}
  end

  # As cover: the same module twice from the same target is done once; from two different
  # files it is an error.
  defp dedupe([{:ok, m, t} = item | rest], acc) do
    case Enum.find(acc, &match?({:ok, ^m, _}, &1)) do
      {:ok, ^m, ^t} -> dedupe(rest, acc)
      {:ok, ^m, _} -> dedupe(rest, [{:error, {:duplicate, m}} | acc])
      nil -> dedupe(rest, [item | acc])
    end
  end

  defp dedupe([error | rest], acc), do: dedupe(rest, [error | acc])
  defp dedupe([], acc), do: Enum.reverse(acc)

  defp cover_error(file, {:no_beam, _}), do: {:error, {:non_existing, file}}
  defp cover_error(file, {:no_debug_info, _}), do: {:error, {:no_abstract_code, file}}

  defp cover_error(file, {:encrypted_debug_info, _}),
    do: {:error, {:encrypted_abstract_code, file}}

  defp cover_error(file, {:no_file_attribute, _}), do: {:error, {:no_file_attribute, file}}
  defp cover_error(_file, reason), do: {:error, reason}

  @doc "Analysis of all modules, coverage at function level."
  def analyse, do: analyse(:_)

  @doc "`analyse(analysis | level | modules)` as `:cover.analyse/1`."
  def analyse(analysis) when analysis in @analyses, do: analyse(:_, analysis)
  def analyse(level) when level in @levels, do: analyse(:_, level)
  def analyse(modules), do: analyse(modules, :coverage)

  @doc "`analyse(analysis, level)` or `analyse(modules, analysis | level)` as `:cover`."
  def analyse(analysis, level) when analysis in @analyses and level in @levels,
    do: analyse(:_, analysis, level)

  def analyse(modules, analysis) when analysis in @analyses,
    do: analyse(modules, analysis, :function)

  def analyse(modules, level) when level in @levels, do: analyse(modules, :coverage, level)

  @doc "`analyse(modules, analysis, level)` as `:cover.analyse/3`."
  def analyse(:_, analysis, level) when analysis in @analyses and level in @levels do
    imported = imported_only(LiveCov.Imported.imported_modules())

    {:result,
     analyse_infos(Instrumented.modules(), analysis, level) ++
       imported_results(imported, analysis, level), []}
  end

  def analyse(modules, analysis, level)
      when is_list(modules) and analysis in @analyses and level in @levels do
    # As cover: every miss reported (duplicates included), misses in reverse order of the
    # request; found modules once each on OTP 25, as often as requested on OTP 27+.
    imported = MapSet.new(imported_only(LiveCov.Imported.imported_modules()))

    {ok, from_import, fail} =
      Enum.reduce(modules, {[], [], []}, fn m, {ok, imp, fail} ->
        case Instrumented.lookup(m) do
          nil ->
            if MapSet.member?(imported, m),
              do: {ok, [m | imp], fail},
              else: {ok, imp, [{:not_cover_compiled, m} | fail]}

          info ->
            {[info | ok], imp, fail}
        end
      end)

    {infos, imp} =
      case LiveCov.Runtime.generation() do
        :otp25 -> {Enum.uniq_by(ok, & &1.module), Enum.uniq(from_import)}
        :otp27 -> {ok, from_import}
      end

    infos = Enum.sort_by(infos, & &1.module)
    imp = Enum.sort(imp)

    {:result, analyse_infos(infos, analysis, level) ++ imported_results(imp, analysis, level),
     fail}
  end

  def analyse(module, analysis, level)
      when is_atom(module) and analysis in @analyses and level in @levels do
    case Instrumented.lookup(module) do
      nil ->
        # As cover: a module known only from imported data is analysed from that data.
        case imported_only([module]) do
          [^module] ->
            LiveCov.SnapshotReport.analyse(LiveCov.Imported.snapshot(), module, analysis, level)

          [] ->
            {:error, {:not_cover_compiled, module}}
        end

      info ->
        {:ok, Analyse.cover(info, Counts.of(info), analysis, level)}
    end
  end

  # Imported modules that are not instrumented here.
  defp imported_only(modules) do
    imported = MapSet.new(LiveCov.Imported.imported_modules())
    Enum.filter(modules, &(MapSet.member?(imported, &1) and Instrumented.lookup(&1) == nil))
  end

  defp imported_results([], _analysis, _level), do: []

  defp imported_results(modules, analysis, level) do
    snap = LiveCov.Imported.snapshot()

    Enum.flat_map(modules, fn m ->
      case LiveCov.SnapshotReport.analyse(snap, m, analysis, level) do
        {:ok, result} -> List.wrap(result)
        {:error, _} -> []
      end
    end)
  end

  defp analyse_infos(infos, analysis, level) do
    counts = infos |> Enum.uniq_by(& &1.module) |> Counts.collect()

    Enum.flat_map(
      infos,
      &List.wrap(Analyse.cover(&1, Map.fetch!(counts, &1.module), analysis, level))
    )
  end

  @doc "Instrumented modules."
  def modules, do: Instrumented.modules() |> Enum.map(& &1.module)

  @doc "`{:file, beam_path}` when `module` is instrumented, else `false`."
  def is_compiled(module) when is_atom(module) do
    case Instrumented.lookup(module) do
      nil -> false
      info -> {:file, info.beam_path}
    end
  end

  @doc "Zeroes every counter."
  def reset do
    _ = LiveCov.Counter.reset_all()
    _ = LiveCov.Nodes.reset(:all)
    # As cover: reset/0 also forgets imported data.
    LiveCov.Imported.clear()
    :ok
  end

  @doc "Zeroes one module's counters; `{:error, {:not_cover_compiled, m}}` if not instrumented."
  def reset(module) when is_atom(module) do
    case Instrumented.lookup(module) do
      nil -> {:error, {:not_cover_compiled, module}}
      info -> with :ok <- LiveCov.Counter.reset(info.slot), do: LiveCov.Nodes.reset([module])
    end
  end

  @doc "Restores every instrumented module's original code, forgets imported data and stops."
  def stop do
    _ = LiveCov.Nodes.stop_nodes(:all)
    _ = Pipeline.restore(:all)
    # As cover: stopping forgets imported data too.
    _ = LiveCov.Imported.clear()
    Pipeline.mark_stopped()
  end

  ## Other nodes (see LiveCov.Nodes)

  @doc """
  Covers other nodes too, as `:cover.start/1`: instrumented modules are loaded there and
  analysis adds their counts. `{:ok, started_nodes}`; this node and nodes already covered
  are left out, and a node that cannot be covered (e.g. LiveCov is not on its code path) is
  logged as a warning with the fix (`LiveCov.Nodes.start_nodes/1` returns the reasons).
  """
  def start(nodes) do
    {:ok, _} = Application.ensure_all_started(:live_cov)
    {started, _failed} = LiveCov.Nodes.start_nodes(nodes)
    {:ok, started}
  end

  @doc "Stops covering `nodes`, keeping what was collected from them, as `:cover.stop/1`."
  def stop(nodes), do: LiveCov.Nodes.stop_nodes(List.wrap(nodes) -- [node()])

  @doc "Collects the counts of `nodes` now (kept should they die), as `:cover.flush/1`."
  def flush(nodes), do: LiveCov.Nodes.flush(List.wrap(nodes) -- [node()])

  @doc "The covered nodes that are up, as `:cover.which_nodes/0`."
  def which_nodes, do: LiveCov.Nodes.which_nodes()

  ## Export and import (LiveCov.Coverdata, LiveCov.Imported)

  @doc """
  Writes the counts of every instrumented module (and of imported-only modules, as cover
  does) to `file` in cover's own `.coverdata` format, which `:cover.import/1`,
  `mix test.coverage` and excoveralls read. `:ok` or `{:error, {:cant_open_file, file, reason}}`.
  """
  def export(file), do: export(file, :_)

  @doc """
  Like `export/1` for one module (`:_`: all); `{:error, {:not_cover_compiled, module}}` if
  unknown. As cover, imported data is written too: the build loaded here, else the
  imported build with most counts. The file has the format of the running OTP.
  """
  @spec export(Path.t() | charlist, module | :_) :: :ok | {:error, term}
  def export(file, module) do
    infos = Instrumented.modules()
    infos = if module == :_, do: infos, else: Enum.filter(infos, &(&1.module == module))
    loaded = MapSet.new(infos, & &1.module)
    imported = LiveCov.Imported.snapshot()

    imported_only =
      for {m, _} <- LiveCov.Snapshot.choose(imported, loaded: MapSet.new()),
          not MapSet.member?(loaded, m),
          module == :_ or m == module,
          do: m

    if module != :_ and infos == [] and imported_only == [] do
      {:error, {:not_cover_compiled, module}}
    else
      {metas, _skipped} = LiveCov.Snapshot.metas_of(infos)
      counts = Counts.collect(infos)

      live =
        for {info, %LiveCov.Snapshot.Meta{hash: h} = meta} <- Enum.zip(infos, metas), h != nil do
          Coverdata.entry(meta, Map.fetch!(counts, info.module))
        end

      others =
        imported
        |> Coverdata.entries(loaded: MapSet.new())
        |> Enum.filter(&(&1.module in imported_only))

      write_entries(file, live ++ others)
    end
  end

  defp write_entries(file, entries) do
    case File.write(file, Coverdata.encode(entries)) do
      :ok -> :ok
      {:error, reason} -> {:error, {:cant_open_file, file, reason}}
    end
  end

  @doc """
  Imports a `.coverdata` file written by `:cover.export/1,2` or `export/1,2` (or a LiveCov
  snapshot): its counts add to those of the same modules. `:ok`, or
  `{:error, {:cant_open_file, file, reason}}`; the same data twice is not imported again.
  """
  @spec import(Path.t() | charlist) :: :ok | {:error, term}
  def import(file) do
    case File.read(to_string(file)) do
      {:error, reason} ->
        {:error, {:cant_open_file, file, reason}}

      {:ok, data} ->
        # A LiveCov snapshot is told by its magic bytes; anything else is read as cover's
        # format, so a damaged file gets a .coverdata error.
        format = if match?(<<0x89, "LiveCov", _::binary>>, data), do: :snapshot, else: :coverdata

        case LiveCov.Imported.import_file(file, format: format) do
          {:ok, _summary} ->
            :ok

          {:error, {:already_imported, msg}} ->
            IO.puts("WARNING: #{msg}")
            :ok

          error ->
            error
        end
    end
  end

  @doc "The imported files (absolute names), as `:cover.imported/0`."
  def imported, do: LiveCov.Imported.imported()

  @doc "Modules with imported data, as `:cover.imported_modules/0`."
  def imported_modules, do: LiveCov.Imported.imported_modules()

  # On a covered node the main-node-only functions answer {:error, :not_main_node}, as
  # :cover's do (wrapping whichever of them are defined above).
  LiveCov.MainNode.main_node_only(
    [
      start: 1,
      stop: 0,
      stop: 1,
      flush: 1,
      which_nodes: 0,
      compile_beam: 2,
      compile_beam_directory: 0,
      compile_beam_directory: 2,
      analyse: 0,
      analyse: 1,
      analyse: 2,
      analyse: 3,
      analyse_to_file: 1,
      analyse_to_file: 2,
      analyse_to_file: 3,
      modules: 0,
      is_compiled: 1,
      reset: 0,
      reset: 1,
      export: 1,
      export: 2,
      import: 1,
      imported: 0,
      imported_modules: 0
    ],
    :reason
  )
end
