defmodule DemoApp.Server do
  @moduledoc "Owns the `:httpd` instance that serves `DemoApp.Router`."
  use GenServer

  def start_link(config), do: GenServer.start_link(__MODULE__, config, name: __MODULE__)

  @doc "The TCP port the server listens on."
  def port, do: GenServer.call(__MODULE__, :port)

  @impl true
  def init(config) do
    Process.flag(:trap_exit, true)

    case :inets.start(:httpd, config) do
      {:ok, pid} ->
        Process.monitor(pid)
        {:ok, pid}

      {:error, reason} ->
        {:stop, {:httpd_not_started, reason}}
    end
  end

  @impl true
  def handle_call(:port, _from, pid) do
    [port: port] = :httpd.info(pid, [:port])
    {:reply, port, pid}
  end

  @impl true
  def handle_info({:DOWN, _ref, :process, pid, reason}, pid),
    do: {:stop, {:httpd_down, reason}, pid}

  @impl true
  def terminate(_reason, pid), do: :inets.stop(:httpd, pid)
end
