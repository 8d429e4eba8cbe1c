defmodule LiveCov.Prune.Version do
  @moduledoc false
  # A coverage-mode module compiled again without some of its bumps: from the recipe kept
  # when it was instrumented (`LiveCov.Instrument.Recipe`), else from its original beam,
  # rewritten again (the sites must come out the same).

  alias LiveCov.{Instrument, ModuleInfo}
  alias LiveCov.Instrument.{Forms, Munge, Rewrite}

  @doc """
  Compiles the version of `info`'s module in which the sites in `pruned` are gone and the
  others bump their usual counters. Returns `{:ok, binary}` (or `{:ok, :original}` when every
  site is in `pruned` and `keep_instrumented` is false).
  """
  @spec compile(ModuleInfo.t(), MapSet.t(), boolean) ::
          {:ok, binary | :original} | {:error, {atom, String.t()}}
  def compile(%ModuleInfo{} = info, pruned, keep_instrumented \\ false) do
    if MapSet.size(pruned) >= ModuleInfo.size(info) and not keep_instrumented do
      {:ok, :original}
    else
      with {:ok, forms, munged, compile_opts} <- cached(info) do
        slot = info.slot
        anno = :erl_anno.new(0)

        site = Instrument.site_fun(slot, compile_opts)

        patched =
          Munge.patch(munged, fn index, line ->
            # A literal in a body is dropped by the compiler; it is valid in every place a
            # placeholder can be (before an expression, in `V = Last, Bump, V`, in the
            # `begin Bump, true end` filter of a comprehension).
            if MapSet.member?(pruned, index),
              do: {:atom, anno, :ok},
              else: site.(index, line)
          end)

        Instrument.compile(forms, patched, slot, compile_opts)
      end
    end
  end

  defp cached(%ModuleInfo{cache: cache} = info) when is_binary(cache) do
    case LiveCov.Instrument.Recipe.decode(cache) do
      {:ok, forms, munged, compile_opts} -> {:ok, forms, munged, compile_opts}
      :error -> rebuild(info)
    end
  end

  defp cached(info), do: rebuild(info)

  # Without a cache (e.g. metadata from elsewhere), the original beam is rewritten again; the
  # sites must come out the same or pruning would move counters.
  defp rebuild(%ModuleInfo{original: original} = info) when is_binary(original) do
    with {:ok, forms} <- Forms.from_binary(original, info.beam_path),
         {:ok, munged, sites, _clauses} <- Rewrite.transform(forms.forms, forms.module) do
      if sites == ModuleInfo.site_list(info),
        do: {:ok, forms, munged, [backend: info.backend]},
        else:
          {:error,
           {:sites_changed,
            "the original beam of #{inspect(info.module)} no longer gives the recorded sites; " <>
              "instrument the module again"}}
    end
  end

  defp rebuild(info) do
    {:error,
     {:no_original,
      "no original beam is recorded for #{inspect(info.module)}; instrument it again in " <>
        "coverage mode"}}
  end
end
