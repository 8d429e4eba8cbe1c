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

  alias LiveCov.{Analyse, Counts, Registry, Table}

  @analyses [:calls, :coverage]
  @levels [:module, :function, :clause, :line]

  @doc "Starts the service. `{:ok, pid}`, or `{:error, {:already_started, pid}}`."
  def start do
    {:ok, _} = Application.ensure_all_started(:live_cov)
    Registry.mark_started()
  end

  @doc """
  Instruments a module (atom), a beam file (charlist or string, `.beam` optional) or a list of
  them. A single target gives `{:ok, module}` or `{:error, reason}`; a list gives a list.
  """
  def compile_beam(target) when is_atom(target) or (is_list(target) and is_integer(hd(target))) do
    case compile_beams([target]) do
      [{:error, {:non_existing, _}}] -> {:error, :non_existing}
      [result] -> result
    end
  end

  def compile_beam(target) when is_binary(target), do: compile_beam(String.to_charlist(target))
  def compile_beam(targets) when is_list(targets), do: compile_beams(targets)

  @doc "Instruments every `.beam` in the current directory."
  def compile_beam_directory do
    with {:ok, dir} <- File.cwd(), do: compile_beam_directory(dir)
  end

  @doc "Instruments every `.beam` in `dir`. `{:error, posix}` when the directory can't be read."
  def compile_beam_directory(dir) do
    dir = to_charlist(dir)

    case :file.list_dir(dir) do
      {:ok, files} ->
        files
        |> Enum.filter(&(:filename.extension(&1) == '.beam'))
        |> Enum.map(&:filename.join(dir, &1))
        |> compile_beams()

      error ->
        error
    end
  end

  defp compile_beams(targets) do
    {:ok, _} = Application.ensure_all_started(:live_cov)
    resolved = targets |> Enum.map(&resolve/1) |> dedupe([])
    todo = for {:ok, _module, target} <- resolved, do: target
    fill(resolved, Registry.instrument(todo), [])
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
    root = :filename.rootname(file, '.beam')
    with_ext = if root == file, do: file ++ '.beam', else: file
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
    {:result, analyse_infos(Registry.modules(), analysis, level), []}
  end

  def analyse(modules, analysis, level)
      when is_list(modules) and analysis in @analyses and level in @levels do
    {ok, fail} =
      modules
      |> Enum.uniq()
      |> Enum.reduce({[], []}, fn m, {ok, fail} ->
        case Registry.lookup(m) do
          nil -> {ok, [{:not_cover_compiled, m} | fail]}
          info -> {[info | ok], fail}
        end
      end)

    {:result, analyse_infos(Enum.sort_by(ok, & &1.module), analysis, level), Enum.reverse(fail)}
  end

  def analyse(module, analysis, level)
      when is_atom(module) and analysis in @analyses and level in @levels do
    case Registry.lookup(module) do
      nil -> {:error, {:not_cover_compiled, module}}
      info -> {:ok, Analyse.cover(info, Counts.of(info), analysis, level)}
    end
  end

  defp analyse_infos(infos, analysis, level) do
    counts = Counts.collect(infos)

    Enum.flat_map(
      infos,
      &List.wrap(Analyse.cover(&1, Map.fetch!(counts, &1.module), analysis, level))
    )
  end

  @doc "Instrumented modules."
  def modules, do: Registry.modules() |> Enum.map(& &1.module)

  @doc "`{:file, beam_path}` when `module` is instrumented, else `false`."
  def is_compiled(module) when is_atom(module) do
    case Registry.lookup(module) do
      nil -> false
      info -> {:file, info.beam_path}
    end
  end

  @doc "Zeroes every counter."
  def reset do
    _ = Table.reset_all()
    :ok
  end

  @doc "Zeroes one module's counters; `{:error, {:not_cover_compiled, m}}` if not instrumented."
  def reset(module) when is_atom(module) do
    case Registry.lookup(module) do
      nil -> {:error, {:not_cover_compiled, module}}
      info -> Table.reset(info.slot)
    end
  end

  @doc "Restores every instrumented module's original code and stops."
  def stop do
    _ = Registry.restore(:all)
    :ok
  end
end
