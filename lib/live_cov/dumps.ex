defmodule LiveCov.Dumps do
  @moduledoc false
  # Keyed dump-and-reset: `LiveCov.dump_and_reset(key: key)` remembers what it took under
  # `key`, and the same key again gets the same snapshot back instead of a second dump.
  #
  # A dump-and-reset zeroes the counters it reads; if the answer never reaches the caller (a
  # timeout, a dropped connection), those counts would be lost. A caller that sends a key of
  # its own and retries with the same key gets them - once: nothing is lost, nothing counted
  # twice. The agent's `GET /snapshot?reset=true&key=...` and the gateway's reset pulls use it.
  #
  # The last 8 keyed dumps are kept, each for 15 minutes. Keyed dumps go one at a time
  # through this process; dumps without a key do not involve it.

  use GenServer

  alias LiveCov.Snapshot

  @keep 8
  @ttl_ms 15 * 60 * 1000
  @key_rule "1 to 128 characters of A-Z a-z 0-9 . _ : -"

  @doc false
  def start_link(_), do: GenServer.start_link(__MODULE__, nil, name: __MODULE__)

  @doc """
  The dump-and-reset for `key` (built with `opts`, see `LiveCov.dump_and_reset/1`): a new one
  the first time, the same snapshot on a retry. Returns `{:new | :replayed, snapshot}`.
  Raises `ArgumentError` for a key that is not 1 to 128 characters of `A-Z a-z 0-9 . _ : -`.
  """
  @spec take(String.t(), keyword) :: {:new | :replayed, Snapshot.t()}
  def take(key, opts \\ []) do
    check_key!(key)
    GenServer.call(__MODULE__, {:take, key, opts}, :infinity)
  end

  @doc "An unkeyed dump-and-reset: every counter of this node read and zeroed in one step."
  @spec dump(keyword) :: Snapshot.t()
  def dump(opts \\ []),
    do: LiveCov.Capture.build(opts |> Keyword.delete(:key) |> Keyword.put(:take, true))

  @doc """
  Forgets `key` (its dump could not be delivered and its counts were given back to the
  table: a retry must dump again).
  """
  @spec forget(String.t()) :: :ok
  def forget(key), do: GenServer.call(__MODULE__, {:forget, key})

  @doc "What a dump key may be, for error messages."
  @spec key_rule() :: String.t()
  def key_rule, do: @key_rule

  @doc "Whether `key` is a valid dump key (#{@key_rule})."
  @spec valid_key?(term) :: boolean
  def valid_key?(key),
    do: is_binary(key) and byte_size(key) in 1..128 and key =~ ~r/\A[A-Za-z0-9._:-]+\z/

  defp check_key!(key) do
    unless valid_key?(key) do
      raise ArgumentError,
            "dump key #{inspect(key)} is not #{@key_rule}; " <>
              "use a fresh random token per dump (and the same one to retry it)"
    end
  end

  @impl true
  def init(nil), do: {:ok, []}

  @impl true
  def handle_call({:take, key, opts}, _from, kept) do
    now = System.monotonic_time(:millisecond)
    kept = Enum.filter(kept, fn {_key, at, _snap} -> now - at < @ttl_ms end)

    case List.keyfind(kept, key, 0) do
      {^key, _at, snap} ->
        {:reply, {:replayed, snap}, kept}

      nil ->
        snap = dump(opts)
        {:reply, {:new, snap}, Enum.take([{key, now, snap} | kept], @keep)}
    end
  end

  def handle_call({:forget, key}, _from, kept),
    do: {:reply, :ok, List.keydelete(kept, key, 0)}
end
