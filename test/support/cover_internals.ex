defmodule LiveCov.Test.CoverInternals do
  @moduledoc """
  What the running OTP's `:cover` builds when it cover-compiles a beam, read from its
  internal tables, for the tests that compare LiveCov's rewrite with it.
  """

  @doc """
  Cover-compiles `beam` (`module`), reads `%{bumps:, mapping:, binary:, clauses:}` (bumps as
  a set of `{{:bump, m, f, a, c, l}, index}`; clauses `nil` where cover keeps no clause
  table, OTP 27+) and stops cover.
  """
  def compile!(module, beam) do
    {:ok, _} = :cover.start()
    {:ok, ^module} = :cover.compile_beam(beam)
    mapping = :ets.tab2list(:cover_internal_mapping_table)
    bumps = for {{:bump, ^module, _, _, _, _}, _} = e <- mapping, into: MapSet.new(), do: e
    [{^module, binary}] = :ets.lookup(:cover_binary_code_table, module)

    clauses =
      case :ets.info(:cover_internal_clause_table) do
        :undefined -> nil
        _ -> with [{^module, cs}] <- :ets.lookup(:cover_internal_clause_table, module), do: cs
      end

    :ok = :cover.stop()
    %{bumps: bumps, mapping: mapping, binary: binary, clauses: clauses}
  end

  @doc "Our sites (index 0-based) as cover's bump set (index from 1)."
  def bumps_of(module, sites) do
    sites
    |> Enum.with_index(1)
    |> MapSet.new(fn {{f, a, c, l}, i} -> {{:bump, module, f, a, c, l}, i} end)
  end

  @doc "The compile options cover uses again for a module: its source and its own options."
  def options(forms),
    do: if(forms.source, do: [{:source, forms.source}], else: []) ++ forms.compile_options
end
