defmodule LiveCov.Counter do
  @moduledoc false
  # The counter-backend seam: where instrumented code's bumps go, and how their counts are
  # read, taken (read and zeroed in one step) and reset. One slot per instrumented module,
  # one counter per bump site, counts as packed little-endian u64 binaries. Today's backend
  # is the NIF's sharded table (`LiveCov.Table`); the pipeline, the snapshots and the count
  # sources use the one `backend/0` names (the application wires it).

  @type slot :: non_neg_integer
  @type error :: {:error, {atom, String.t()}}

  @doc "The abstract expression instrumented code runs to bump counter `index` of `slot`."
  @callback bump_expr(slot, index :: non_neg_integer) :: tuple

  @doc "`:ok` when the backend can count here, else why not."
  @callback check() :: :ok | error

  @doc "A fresh slot of `nsites` zeroed counters."
  @callback register(nsites :: non_neg_integer) :: {:ok, slot} | error

  @doc "Forgets a slot (code still bumping it is harmless)."
  @callback unregister(slot) :: :ok | error

  @doc "The counts of a slot, in site order."
  @callback read(slot) :: {:ok, [non_neg_integer]} | error

  @doc "Reads and zeroes a slot in one step (no concurrent bump lost or counted twice)."
  @callback take(slot) :: {:ok, [non_neg_integer]} | error

  @doc "Adds counts to a slot."
  @callback add(slot, [non_neg_integer] | binary) :: :ok | error

  @doc "Zeroes one slot."
  @callback reset(slot) :: :ok | error

  @doc "Every live slot: `%{slot => packed counts}`; `take: true` zeroes as it reads."
  @callback snapshot(keyword) :: %{slot => binary}

  @doc "The backend in use, wired by the application (`LiveCov.Application`)."
  @spec backend() :: module
  def backend do
    case :persistent_term.get({__MODULE__, :backend}, nil) do
      nil -> raise ArgumentError, "no LiveCov counter backend: start the :live_cov application"
      backend -> backend
    end
  end

  @doc "Sets the backend (a module implementing this behaviour)."
  @spec put_backend(module) :: :ok
  def put_backend(module) when is_atom(module),
    do: :persistent_term.put({__MODULE__, :backend}, module)
end
