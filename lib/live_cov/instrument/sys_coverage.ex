defmodule LiveCov.Instrument.SysCoverage do
  @moduledoc false
  # The rewrite of runtimes whose `cover` instruments with the compiler's own transform,
  # `sys_coverage:cover_transform/2` (OTP 27 and later): the same transform, so the same
  # executable lines, the same `{function, arity, clause, line}` attribution and the same
  # counter numbering as that runtime's `cover`, for every form the runtime knows (map
  # comprehensions, strict and zip generators, multi-valued templates, ...).
  #
  # The transform marks every counter with `{:executable_line, line, index}` (index from 1,
  # allocated by our index fun in first-use order, as cover's `counter_index/5` does). They
  # become `{:BUMP, line, index - 1}` placeholders, so `LiveCov.Instrument.Munge.patch/2`
  # turns them into bump calls as for the OTP 25 rewrite. The result has the shape of
  # `LiveCov.Instrument.Munge.transform/2`'s; these runtimes' cover keeps no clause table,
  # so `clauses` is `[]`.
  #
  # On a runtime with native coverage (`LiveCov.Runtime.native_coverage?/0`), cover's counts
  # come from the VM's line counters, which never count a marker without a location (line 0:
  # Elixir's `__info__/1`, generated clauses): such a site keeps its counter but gets no bump,
  # so the counts are cover's. Elsewhere (an emulator without the JIT) cover bumps them all,
  # and so does LiveCov.
  #
  # `andalso`/`orelse` are first expanded by `LiveCov.Instrument.Expand` (the same rewrite,
  # with temporaries that never collide), so the runtime's expansion finds nothing left to do.

  alias LiveCov.Instrument.{Expand, Munge, Walk}

  # Present from OTP 27 on; `available?/0` is checked before any call.
  @compile {:no_warn_undefined, {:sys_coverage, :cover_transform, 2}}

  @doc "True when the running OTP has `sys_coverage:cover_transform/2`."
  @spec available? :: boolean
  def available?, do: LiveCov.Runtime.sys_coverage?()

  @doc """
  Same contract as `LiveCov.Instrument.Munge.transform/2`. `native:` (default: the
  runtime's `LiveCov.Runtime.native_coverage?/0`) leaves line-0 sites without a bump.
  """
  @spec transform([tuple], module, keyword) ::
          {:ok, [tuple], [Munge.site()], []} | {:error, {atom, String.t()}}
  def transform(forms, module, opts \\ [])

  def transform(forms, module, opts) when is_list(forms) and is_atom(module) do
    case Munge.main_file(forms) do
      {:ok, _main} -> run(forms, module, Keyword.get_lazy(opts, :native, &native?/0))
      :error -> Munge.transform(forms, module)
    end
  end

  def transform(forms, module, _opts), do: Munge.transform(forms, module)

  defp native?, do: LiveCov.Runtime.native_coverage?()

  defp run(forms, module, native) do
    key = {__MODULE__, make_ref()}
    Process.put(key, {%{}, []})

    index_fun = fn _m, f, a, c, line ->
      {index, sites} = Process.get(key)
      site = {f, a, c, line}

      case index do
        %{^site => i} ->
          i

        _ ->
          i = map_size(index) + 1
          Process.put(key, {Map.put(index, site, i), [site | sites]})
          i
      end
    end

    try do
      expanded = Enum.map(forms, &Expand.form/1)
      {:ok, munged} = :sys_coverage.cover_transform(expanded, index_fun)
      {_index, sites} = Process.get(key)
      {:ok, placeholders(munged, native), Enum.reverse(sites), []}
    rescue
      e -> bad_forms(module, Exception.message(e))
    catch
      kind, reason -> bad_forms(module, Exception.format_banner(kind, reason))
    after
      Process.delete(key)
    end
  end

  defp bad_forms(module, why) do
    {:error,
     {:bad_forms,
      "could not instrument the abstract code of #{inspect(module)}: " <>
        why <> "; the module's debug_info looks malformed"}}
  end

  defp placeholders(forms, native) do
    Walk.replace_markers(forms, :executable_line, fn
      0, _index when native -> {:atom, 0, :ok}
      line, index -> {:BUMP, line, index - 1}
    end)
  end
end
