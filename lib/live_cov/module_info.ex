defmodule LiveCov.ModuleInfo do
  @moduledoc """
  Static metadata of one instrumented module, kept apart from its hot counters.

  `sites` is a tuple of `{function, arity, clause, line}` in counter order: counter `i` of
  the module's `slot` counts site `i`. `md5` identifies the build (the original beam's md5).

  `instrumented` is the binary LiveCov has loaded for the module. In `mode: :coverage`
  (`LiveCov.Prune`) that version changes as sites run: `pruned` holds the indices of sites
  removed from the loaded code (their counters are frozen), `prunes` counts the reloads and
  `pruned_at` is the time of the last one (ms since the epoch). `cache` keeps what
  recompiling needs (see `LiveCov.Prune.cache/2`); it is `nil` in `mode: :counts`.
  """

  @enforce_keys [:module, :slot, :sites, :md5]
  defstruct [
    :module,
    :slot,
    :sites,
    :md5,
    :beam_path,
    :source,
    :main_file,
    :original,
    :instrumented,
    clauses: [],
    instrumented_at: nil,
    mode: :counts,
    pruned: MapSet.new(),
    prunes: 0,
    pruned_at: nil,
    cache: nil
  ]

  @type site :: {atom, non_neg_integer, pos_integer, non_neg_integer}
  @type t :: %__MODULE__{
          module: module,
          slot: non_neg_integer,
          sites: tuple,
          md5: binary,
          beam_path: charlist | nil,
          source: String.t() | nil,
          main_file: charlist | nil,
          original: binary | nil,
          instrumented: binary | nil,
          clauses: list,
          instrumented_at: integer | nil,
          mode: :counts | :coverage,
          pruned: MapSet.t(non_neg_integer),
          prunes: non_neg_integer,
          pruned_at: integer | nil,
          cache: binary | nil
        }

  @doc "Number of bump sites."
  @spec size(t) :: non_neg_integer
  def size(%__MODULE__{sites: sites}), do: tuple_size(sites)
end
