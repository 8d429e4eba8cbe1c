defmodule LiveCov.Instrument do
  @moduledoc false
  # Compiles, loads and restores instrumented modules.
  #
  # The pipeline for one module:
  #
  #     {:ok, forms} = LiveCov.Instrument.Forms.fetch(MyMod)
  #     {:ok, munged, sites, clauses} = LiveCov.Instrument.Munge.transform(forms.forms, MyMod)
  #     {:ok, binary} = LiveCov.Instrument.compile(forms, munged, slot)
  #     :ok = LiveCov.Instrument.load(MyMod, binary, forms.beam_path)
  #     # ... later
  #     {:ok, _still_running} = LiveCov.Instrument.restore(MyMod, forms.binary, forms.beam_path)
  #
  # Every counter placeholder becomes the counter backend's site expression
  # (`LiveCov.Counter.Backend`): `LiveCov.Native.bump(slot, index)` with literal
  # integers, or the runtime's own line counter. Nothing here ever kills a process:
  # when old code is still running, the functions report the pids and leave them alone.

  alias LiveCov.Instrument.{Forms, Munge}

  @type error :: {:error, {atom(), String.t()}}

  @doc """
  Patches the placeholders of `munged_forms` with bump calls for `slot` and
  compiles them the way cover recompiles a module: the original `source`
  compile info plus the user options cover keeps, as a binary.

  Options:

    * `:backend` - the counter backend, `:nif` or `:native` (default: the one
      `LiveCov.Counter.resolve/2` picks): what each site compiles to, and its compile options.
    * `:bump_module` - a module whose `bump/2` is called instead (tests count with their own).
    * `:optimize` - `:coverage` (default) or `:full`, see `compile_options/1`.

  Returns `{:ok, beam_binary}` or `{:error, {:compile_failed, message}}`.
  """
  @spec compile(Forms.t(), [tuple()], non_neg_integer(), keyword()) :: {:ok, binary()} | error()
  def compile(%Forms{} = forms, munged_forms, slot, opts \\ [])
      when is_list(munged_forms) and is_integer(slot) and slot >= 0 do
    site = site_fun(slot, opts)
    patched = Munge.patch(munged_forms, site)

    source = if forms.source, do: [{:source, forms.source}], else: []

    options =
      source ++
        forms.compile_options ++
        compile_options(opts) ++ [:binary, :return_errors, :return_warnings]

    case :compile.forms(patched, options) do
      {:ok, _module, binary, _warnings} when is_binary(binary) ->
        {:ok, binary}

      {:ok, _module, binary} when is_binary(binary) ->
        {:ok, binary}

      {:error, errors, _warnings} ->
        {:error,
         {:compile_failed,
          "instrumented #{inspect(forms.module)} failed to compile: " <>
            format_diagnostics(errors) <> "; please report this as a LiveCov bug"}}

      :error ->
        {:error,
         {:compile_failed,
          "instrumented #{inspect(forms.module)} failed to compile; please report this as a LiveCov bug"}}
    end
  rescue
    e ->
      {:error,
       {:compile_failed,
        "instrumented #{inspect(forms.module)} crashed the compiler: #{Exception.message(e)}"}}
  end

  # Measured on Elixir's own apps and a generated corpus (bench/scale.exs; the passes'
  # times with `compile:forms(Forms, [time])`): these passes are where a bump call per line
  # costs the compiler most, and skipping them costs the instrumented code little at run
  # time (the workload row of bench/scale.exs compares both profiles). Not skipped:
  # ssa_opt_live (the workload ran 25% slower without it), the boolean optimisation (12%),
  # the whole SSA optimiser (1.9x).
  @coverage_profile [
    :no_lint,
    :no_type_opt,
    :no_module_opt,
    :no_share_opt,
    :no_ssa_opt_sink,
    :no_ssa_opt_dead,
    :no_ssa_opt_cse,
    :no_ssa_opt_tail_phis
  ]

  @doc """
  The compiler options `compile/4` adds for `opts[:optimize]`:

    * `:coverage` (default): `#{inspect(@coverage_profile)}`. A coverage build, as gcc's
      `--coverage` is usually paired with `-O0`: erl_lint is skipped (the forms come from a
      beam that compiled, plus bump calls) and so are the type-based and module-level
      optimisations, block sharing, and the SSA sub-passes that sink, fold dead branches,
      eliminate common subexpressions and move tail phi nodes: their cost grows with every
      bump call. Liveness, boolean, binary-match and receive optimisations stay on. The
      lines counted are the same.
    * `:full`: none; the instrumented module is optimised like the original.

  An unknown value raises `ArgumentError`.
  """
  @spec compile_options(keyword) :: [atom]
  def compile_options(opts \\ []) do
    backend = LiveCov.Counter.backend(LiveCov.Counter.name_in(opts)).compile_options()

    case Keyword.get(opts, :optimize, :coverage) do
      :coverage ->
        @coverage_profile ++ backend

      :full ->
        backend

      other ->
        raise ArgumentError,
              "optimize: #{inspect(other)} is not a LiveCov compile profile; use :coverage or :full"
    end
  end

  @doc """
  The function giving the abstract expression at site `index` (on `line`) of `slot`, for
  `opts[:backend]` (default: `LiveCov.Counter.name_in/1`), or a call to `opts[:bump_module].bump(slot, index)`.
  """
  @spec site_fun(non_neg_integer(), keyword()) :: (non_neg_integer(), integer() -> tuple())
  def site_fun(slot, opts \\ []) do
    case Keyword.get(opts, :bump_module) do
      nil ->
        backend = LiveCov.Counter.backend(LiveCov.Counter.name_in(opts))
        &backend.site_expr(slot, &1, &2)

      module ->
        fn index, _line -> LiveCov.Counter.Nif.bump_call(module, slot, index) end
    end
  end

  @doc """
  Loads `binary` as the current code of `module`, under the filename
  `beam_path` (default: where `:code.which/1` says the module comes from), so
  `:code.which/1` keeps pointing at the original beam.

  Old code is soft-purged first; if processes still run it, nothing is
  loaded and `{:error, {:old_code_in_use, message}}` names them.
  """
  @spec load(module(), binary(), charlist() | String.t() | nil) :: :ok | error()
  def load(module, binary, beam_path \\ nil) when is_atom(module) and is_binary(binary) do
    filename = filename(module, beam_path)

    with :ok <- purge_old(module, "loading the instrumented version") do
      load_binary(module, filename, binary)
    end
  end

  @doc """
  Loads many modules, `[{module, binary, beam_path}]`, and returns `:ok` or the error of
  `load/3` for each, in order. Same result as `load/3` on each, in less time: the modules
  go in chunks, one per task, each chunk decoded in its task and committed with one
  `code:atomic_load/1` (one trip through the code server per chunk, not per module). A chunk
  that cannot go that way (old code still in use, an `on_load` function, ...) is loaded
  module by module with `load/3`, which explains what is wrong.
  """
  @spec load_many([{module(), binary(), charlist() | String.t() | nil}]) :: [:ok | error()]
  def load_many(items) when is_list(items) do
    s = System.schedulers_online()
    size = items |> length() |> div(2 * s) |> max(1) |> min(50)

    items
    |> Enum.chunk_every(size)
    |> Task.async_stream(&load_chunk/1, max_concurrency: s, timeout: :infinity, ordered: true)
    |> Enum.flat_map(fn {:ok, results} -> results end)
  end

  defp load_chunk(items) do
    batch =
      for {module, binary, path} <- items,
          :code.soft_purge(module),
          do: {module, filename(module, path), binary}

    if length(batch) == length(items) and :code.atomic_load(batch) == :ok,
      do: Enum.map(items, fn _ -> :ok end),
      else: load_each(items)
  catch
    _, _ -> load_each(items)
  end

  defp load_each(items),
    do: Enum.map(items, fn {module, binary, path} -> load(module, binary, path) end)

  @doc """
  Reloads the original beam of `module` (`original_binary`, from
  `beam_path`), replacing the instrumented version.

  Old code is soft-purged before loading (if processes still run it,
  `{:error, {:old_code_in_use, message}}` and nothing changes). After
  loading, the now-old instrumented version is soft-purged when no process
  runs it. Returns `{:ok, pids}` where `pids` lists the processes that still
  run the instrumented code (they keep bumping until they leave it; nothing
  is killed).
  """
  @spec restore(module(), binary(), charlist() | String.t() | nil) :: {:ok, [pid()]} | error()
  def restore(module, original_binary, beam_path)
      when is_atom(module) and is_binary(original_binary) do
    filename = filename(module, beam_path)

    with :ok <- purge_old(module, "restoring the original"),
         :ok <- load_binary(module, filename, original_binary) do
      if :code.soft_purge(module), do: {:ok, []}, else: {:ok, old_code_pids(module)}
    end
  end

  @doc """
  Runs `fun` on every element of `items` in parallel (one task per
  scheduler) and returns the results in the order of `items`. An exception,
  throw or exit inside `fun` becomes `{:error, {:crashed, message}}` for that
  element only.
  """
  @spec instrument_many([term()], (term() -> term())) :: [term()]
  def instrument_many(items, fun) when is_list(items) and is_function(fun, 1) do
    items
    |> Task.async_stream(&protect(fun, &1),
      ordered: true,
      timeout: :infinity,
      max_concurrency: System.schedulers_online()
    )
    |> Enum.map(fn
      {:ok, result} -> result
      {:exit, reason} -> {:error, {:crashed, "task exited: #{inspect(reason)}"}}
    end)
  end

  @doc "Pids of the processes that run old code of `module`."
  @spec old_code_pids(module()) :: [pid()]
  def old_code_pids(module) do
    Enum.filter(Process.list(), fn pid ->
      try do
        :erlang.check_process_code(pid, module) == true
      catch
        _, _ -> false
      end
    end)
  end

  ## Helpers

  defp protect(fun, item) do
    fun.(item)
  catch
    kind, reason ->
      {:error,
       {:crashed,
        "instrumenting #{inspect(item)} crashed: " <>
          Exception.format(kind, reason, __STACKTRACE__)}}
  end

  defp purge_old(module, doing) do
    if :code.soft_purge(module) do
      :ok
    else
      pids = old_code_pids(module)

      {:error,
       {:old_code_in_use,
        "old code of #{inspect(module)} is still run by #{inspect(pids)}; " <>
          "#{doing} would kill them. Let them leave the old code (or stop them) and retry"}}
    end
  end

  # Decoding and JIT-compiling the module happens in the calling process (the instrumenting
  # workers run in parallel); only the final step goes through the code server, where
  # `:code.load_binary/3` would do all of it, one module at a time. Anything unusual (an
  # `on_load` function, a sticky module, a bad binary) takes `:code.load_binary/3`, which
  # explains it.
  defp load_binary(module, filename, binary) do
    with {:ok, prepared} <- :code.prepare_loading([{module, filename, binary}]),
         :ok <- :code.finish_loading(prepared) do
      :ok
    else
      _ -> load_binary_slow(module, filename, binary)
    end
  end

  defp load_binary_slow(module, filename, binary) do
    case :code.load_binary(module, filename, binary) do
      {:module, ^module} ->
        :ok

      {:error, reason} ->
        {:error,
         {:load_failed,
          "loading #{inspect(module)} from #{filename} failed: #{inspect(reason)}" <>
            load_hint(reason)}}
    end
  end

  defp load_hint(:sticky_directory), do: "; the module is in a sticky directory"
  defp load_hint(:not_purged), do: "; old code is still in use, retry later"
  defp load_hint(:on_load_failure), do: "; the module's on_load function failed"
  defp load_hint(_), do: ""

  defp filename(_module, path) when is_binary(path), do: String.to_charlist(path)
  defp filename(_module, path) when is_list(path), do: path

  defp filename(module, nil) do
    case :code.which(module) do
      path when is_list(path) and path != [] -> path
      _ -> ~c"#{module}.beam"
    end
  end

  defp format_diagnostics(errors) do
    errors
    |> Enum.flat_map(fn {file, diags} ->
      Enum.map(diags, fn
        {location, mod, description} ->
          "#{file}:#{inspect(location)}: #{mod.format_error(description)}"

        other ->
          "#{file}: #{inspect(other)}"
      end)
    end)
    |> Enum.join("; ")
  rescue
    _ -> inspect(errors)
  end
end
