defmodule LiveCov.Counter.Backend do
  @moduledoc false
  # The seam between instrumented code and the counter table (`LiveCov.Counter`): what one
  # bump site compiles to, the compile options that go with it, and whether this runtime can
  # count that way. Counts always end up in the module's slot of `LiveCov.Table`.

  @type error :: {:error, {atom, String.t()}}

  @doc "`:nif` or `:native`, as users write it."
  @callback name() :: :nif | :native

  @doc "`:ok` when this backend can count here, else why not and what to do."
  @callback check() :: :ok | error

  @doc """
  The abstract expression at bump site `index` (from 0) of `slot`, on source `line` (an
  expression a body can hold before the next one).
  """
  @callback site_expr(slot :: non_neg_integer, index :: non_neg_integer, line :: integer) ::
              tuple

  @doc "Compiler options instrumented modules need with this backend."
  @callback compile_options() :: [atom]
end
