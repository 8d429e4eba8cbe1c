defmodule LiveCov.Table do
  @moduledoc false
  # The NIF's counter table: one slot per instrumented module, one counter per bump site.
  # Read it through `LiveCov.Counter`, which first harvests the slots that the runtime's line
  # counters feed (the `:native` backend).
  #
  # Code instrumented for the `:nif` backend bumps counters with `LiveCov.Native.bump(slot,
  # index)` (literal integers baked into the code). Each bump is one relaxed atomic add on the calling scheduler's shard;
  # reads sum the shards. Counts travel as packed little-endian u64 binaries.
  #
  # Slot ids are dense and never reused within a VM, so code still running an old instrumented
  # version of a module only ever bumps its own, retired slot.

  alias LiveCov.Native

  @type slot :: non_neg_integer()
  @type error :: {:error, {atom(), String.t()}}

  @doc "True when the NIF library is loaded."
  @spec loaded?() :: boolean()
  def loaded?, do: Native.load_error() == nil

  @doc "Explains why the NIF is not loaded, or `:ok`."
  @spec check() :: :ok | error
  def check do
    case Native.load_error() do
      nil ->
        :ok

      {path, text} ->
        {:error,
         {:nif_not_loaded,
          "LiveCov's NIF library #{path}.so could not be loaded (#{text}): " <>
            "build it with `mix compile` in the live_cov project (needs cargo)"}}
    end
  end

  @doc "Registers a fresh slot with `nsites` zeroed counters."
  @spec register(non_neg_integer()) :: {:ok, slot} | error
  def register(nsites), do: Native.register(nsites)

  @doc "Installs a fresh slot under a given id (a replica of another node's slot)."
  @spec register_at(slot, non_neg_integer()) :: {:ok, slot} | error
  def register_at(slot, nsites), do: Native.register_at(slot, nsites)

  @doc """
  Installs a fresh slot under `slot` only if that id was never used in this VM (registered,
  claimed or installed before, even if since unregistered): then a binary compiled earlier
  for `slot` (see `LiveCov.Cache`) can be loaded as is, since no other code ever bumped it.
  `{:error, {:slot_taken, message}}` otherwise. Ids past the current end are fine; later
  `register/1` calls return ids above the claimed one.
  """
  @spec claim(slot, non_neg_integer()) :: {:ok, slot} | error
  def claim(slot, nsites), do: Native.claim(slot, nsites)

  @doc """
  Registers a fresh slot whose id is at least `min` (and above every id used so far), so
  fresh ids stay clear of ids a cache is expected to `claim/2`. As `register/1` when `min`
  is out of range.
  """
  @spec register_from(non_neg_integer(), non_neg_integer()) :: {:ok, slot} | error
  def register_from(min, nsites), do: Native.register_from(min, nsites)

  @doc "Unlinks a slot; its memory is freed after a grace period."
  @spec unregister(slot) :: :ok | error
  def unregister(slot), do: Native.unregister(slot)

  @doc "The counts of a slot as a list, in site order."
  @spec read(slot) :: {:ok, [non_neg_integer()]} | error
  def read(slot), do: with({:ok, bin} <- Native.read(slot), do: {:ok, decode(bin)})

  @doc "The counts of a slot as a packed binary (`n × u64-le`)."
  @spec read_binary(slot) :: {:ok, binary} | error
  def read_binary(slot), do: Native.read(slot)

  @doc "Reads and zeroes a slot in one step: no concurrent bump is lost or counted twice."
  @spec take(slot) :: {:ok, [non_neg_integer()]} | error
  def take(slot), do: with({:ok, bin} <- Native.take(slot), do: {:ok, decode(bin)})

  @doc "Adds counts (a list or a packed binary) to a slot."
  @spec add(slot, [non_neg_integer()] | binary) :: :ok | error
  def add(slot, counts) when is_list(counts), do: Native.add(slot, encode(counts))
  def add(slot, counts) when is_binary(counts), do: Native.add(slot, counts)

  @doc "Zeroes one slot."
  @spec reset(slot) :: :ok | error
  def reset(slot), do: Native.reset(slot)

  @doc "Zeroes every slot."
  @spec reset_all() :: :ok
  def reset_all, do: Native.reset_all()

  @doc """
  Every live slot's counts: `%{slot => packed_counts}`. With `take: true` the counters are
  zeroed as they are read (exact under concurrent bumps). Large tables are read on a dirty
  scheduler so normal schedulers are never blocked.
  """
  @spec snapshot(keyword) :: %{slot => binary}
  def snapshot(opts \\ []) do
    take = Keyword.get(opts, :take, false)

    bin =
      if Native.info().sites > Native.dirty_threshold(),
        do: Native.snapshot_dirty(take),
        else: Native.snapshot(take)

    split_snapshot(bin, %{})
  end

  defp split_snapshot(<<>>, acc), do: acc

  defp split_snapshot(<<slot::little-32, n::little-32, rest::binary>>, acc) do
    {counts, rest} = :erlang.split_binary(rest, n * 8)
    split_snapshot(rest, Map.put(acc, slot, counts))
  end

  @doc "Table-wide figures: shards, live slots, sites, bytes."
  @spec info() :: map
  def info, do: Native.info()

  @doc "Decodes packed counts into a list."
  @spec decode(binary) :: [non_neg_integer()]
  def decode(bin), do: for(<<c::little-64 <- bin>>, do: c)

  @doc "Encodes a list of counts into the packed form."
  @spec encode([non_neg_integer()]) :: binary
  def encode(counts), do: for(c <- counts, into: <<>>, do: <<c::little-64>>)
end
