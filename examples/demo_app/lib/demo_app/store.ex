defmodule DemoApp.Store do
  @moduledoc "The key-value store: one process holding a map."
  use GenServer

  def start_link(_), do: GenServer.start_link(__MODULE__, %{}, name: __MODULE__)

  @doc "All keys, sorted."
  def keys, do: GenServer.call(__MODULE__, :keys)

  @doc "`{:ok, value}` or `:error`."
  def get(key), do: GenServer.call(__MODULE__, {:get, key})

  @doc "Stores `value`; `:created` or `:replaced`."
  def put(key, value), do: GenServer.call(__MODULE__, {:put, key, value})

  @doc "`:ok`, or `:error` when the key is absent."
  def delete(key), do: GenServer.call(__MODULE__, {:delete, key})

  @impl true
  def init(map), do: {:ok, map}

  @impl true
  def handle_call(:keys, _from, map), do: {:reply, map |> Map.keys() |> Enum.sort(), map}

  def handle_call({:get, key}, _from, map), do: {:reply, Map.fetch(map, key), map}

  def handle_call({:put, key, value}, _from, map) do
    reply = if Map.has_key?(map, key), do: :replaced, else: :created
    {:reply, reply, Map.put(map, key, value)}
  end

  def handle_call({:delete, key}, _from, map) do
    if Map.has_key?(map, key) do
      {:reply, :ok, Map.delete(map, key)}
    else
      {:reply, :error, map}
    end
  end
end
