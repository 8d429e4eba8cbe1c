defmodule LiveCov.ModuleInfo do
  @moduledoc false
  # Static metadata of one instrumented module, kept apart from its hot counters.
  #
  # Sites are `{function, arity, clause, line}` in counter order: counter `i` of the module's
  # `slot` counts site `i` (`sites/1`, `site_list/1`). Clauses are `{function, arity, clause,
  # sites_in_clause}` (`clauses/1`). `md5` identifies the build (the original beam's md5).
  #
  # Both are kept packed, as 12 bytes a site or clause (`<<function_index::32, clause::32,
  # line_or_count::32>>`) plus one `{function, arity}` tuple per function: a module's metadata
  # is a few binaries instead of a tuple per site, about a quarter of the memory, and reading
  # it from ETS copies no per-site terms. Build one with `new/1`.
  #
  # `backend` is what counts its bumps (`LiveCov.Counter`): `:nif` or `:native`.
  #
  # `instrumented` is the binary LiveCov has loaded for the module. In `mode: :coverage`
  # (`LiveCov.Prune`) that version changes as sites run: `pruned` holds the indices of sites
  # removed from the loaded code (their counters are frozen), `prunes` counts the reloads and
  # `pruned_at` is the time of the last one (ms since the epoch). `cache` keeps what
  # recompiling needs (see `LiveCov.Prune.cache/3`); it is `nil` in `mode: :counts`.

  @enforce_keys [:module, :slot, :site_data, :md5]
  defstruct [
    :module,
    :slot,
    :site_data,
    :md5,
    :beam_path,
    :source,
    :main_file,
    :original,
    :instrumented,
    functions: {},
    clause_data: <<>>,
    instrumented_at: nil,
    mode: :counts,
    backend: :nif,
    pruned: MapSet.new(),
    prunes: 0,
    pruned_at: nil,
    cache: nil
  ]

  @type site :: {atom, non_neg_integer, non_neg_integer, non_neg_integer}
  @type clause :: {atom, non_neg_integer, non_neg_integer, non_neg_integer}
  @type t :: %__MODULE__{
          module: module,
          slot: non_neg_integer,
          site_data: binary,
          functions: tuple,
          clause_data: binary,
          md5: binary,
          beam_path: charlist | nil,
          source: String.t() | nil,
          main_file: charlist | nil,
          original: binary | nil,
          instrumented: binary | nil,
          instrumented_at: integer | nil,
          mode: :counts | :coverage,
          backend: :nif | :native,
          pruned: MapSet.t(non_neg_integer),
          prunes: non_neg_integer,
          pruned_at: integer | nil,
          cache: binary | nil
        }

  @max 0xFFFFFFFF

  @doc """
  Builds the metadata from `fields`: `sites:` (a list or tuple of sites, required) and
  `clauses:` (a list, default `[]`) are packed; the other keys are struct fields.
  Raises `ArgumentError` for a site or clause that is not `{atom, arity, index, line}` with
  integers below 2^32.
  """
  @spec new(keyword | map) :: t
  def new(fields) do
    fields = Map.new(fields)
    sites = fields |> Map.fetch!(:sites) |> to_list()
    clauses = Map.get(fields, :clauses, [])
    {index, functions} = function_table(sites ++ clauses)

    struct!(
      __MODULE__,
      fields
      |> Map.drop([:sites, :clauses])
      |> Map.merge(%{
        site_data: pack(sites, index),
        clause_data: pack(clauses, index),
        functions: functions
      })
    )
  end

  @doc "Number of bump sites."
  @spec size(t) :: non_neg_integer
  def size(%__MODULE__{site_data: data}), do: div(byte_size(data), 12)

  @doc "The sites as a tuple, in counter order."
  @spec sites(t) :: tuple
  def sites(%__MODULE__{} = info), do: info |> site_list() |> List.to_tuple()

  @doc "The sites as a list, in counter order."
  @spec site_list(t) :: [site]
  def site_list(%__MODULE__{site_data: data, functions: funs}), do: unpack(data, funs)

  @doc "The clauses: `{function, arity, clause, sites_in_clause}`."
  @spec clauses(t) :: [clause]
  def clauses(%__MODULE__{clause_data: data, functions: funs}), do: unpack(data, funs)

  @doc "Bytes of packed metadata (sites, clauses, function table), for memory accounting."
  @spec packed_bytes(t) :: non_neg_integer
  def packed_bytes(%__MODULE__{} = info) do
    byte_size(info.site_data) + byte_size(info.clause_data) +
      :erts_debug.flat_size(info.functions) * :erlang.system_info(:wordsize)
  end

  defp to_list(sites) when is_tuple(sites), do: Tuple.to_list(sites)
  defp to_list(sites) when is_list(sites), do: sites

  defp function_table(entries) do
    {index, rev, _} =
      Enum.reduce(entries, {%{}, [], 0}, fn entry, {index, rev, n} = acc ->
        fa = function_of(entry)
        if Map.has_key?(index, fa), do: acc, else: {Map.put(index, fa, n), [fa | rev], n + 1}
      end)

    {index, rev |> Enum.reverse() |> List.to_tuple()}
  end

  defp function_of({f, a, c, l})
       when is_atom(f) and is_integer(a) and a in 0..255 and is_integer(c) and c in 0..@max and
              is_integer(l) and l in 0..@max,
       do: {f, a}

  defp function_of(entry) do
    raise ArgumentError,
          "#{inspect(entry)} is not a site or clause {function, arity, index, line}"
  end

  defp pack(entries, index) do
    for {f, a, c, l} <- entries, into: <<>>, do: <<Map.fetch!(index, {f, a})::32, c::32, l::32>>
  end

  defp unpack(data, funs) do
    for <<i::32, c::32, l::32 <- data>> do
      {f, a} = elem(funs, i)
      {f, a, c, l}
    end
  end
end
