defmodule LiveCov.Test.Peers do
  @moduledoc false
  # Distribution and OTP `:peer` nodes for the multi-node tests, and a free TCP port.

  @doc """
  Makes this VM a distributed node (`<prefix>_<os pid>@127.0.0.1`, long names) unless it
  already is one; starts epmd.
  """
  def ensure_distributed!(prefix) do
    unless Node.alive?() do
      {_, 0} = System.cmd("epmd", ["-daemon"])
      {:ok, _} = :net_kernel.start([:"#{prefix}_#{System.pid()}@127.0.0.1", :longnames])
    end
  end

  @doc """
  Starts a peer node `name` (long names, on this node's host), stopped when the test is
  done. Returns `{peer_pid, node}`.

  Options:
    * `code_path:` - give the peer this VM's code path (default true);
    * `args:` - more command line arguments, before the code path (e.g. `[~c"-hidden"]`);
    * `host:` - the host (default: this node's);
    * `connection:` - `:peer`'s control connection;
    * `tries:` - attempts, 100 ms apart: a node's name can take a moment to be free again
      after it died (default 20).
  """
  def start(name, opts \\ []) do
    paths = if Keyword.get(opts, :code_path, true), do: [~c"-pa" | :code.get_path()], else: []

    spec =
      %{
        name: name,
        host: Keyword.get_lazy(opts, :host, &this_host/0),
        longnames: true,
        args: Keyword.get(opts, :args, []) ++ paths
      }
      |> Map.merge(Map.new(Keyword.take(opts, [:connection])))

    {:ok, pid, node} = retry(fn -> :peer.start(spec) end, Keyword.get(opts, :tries, 20))
    ExUnit.Callbacks.on_exit(fn -> stop(pid) end)
    {pid, node}
  end

  @doc "Stops a peer; a peer already gone is fine."
  def stop(pid) do
    :peer.stop(pid)
  catch
    :exit, _ -> :ok
  end

  @doc "A TCP port nothing listens on at the moment (on 127.0.0.1)."
  def free_port do
    {:ok, socket} = :gen_tcp.listen(0, ip: {127, 0, 0, 1})
    {:ok, port} = :inet.port(socket)
    :gen_tcp.close(socket)
    port
  end

  defp this_host do
    [_, host] = node() |> Atom.to_string() |> String.split("@")
    String.to_charlist(host)
  end

  defp retry(fun, tries) do
    case fun.() do
      {:ok, _, _} = ok ->
        ok

      error when tries <= 1 ->
        error

      _ ->
        Process.sleep(100)
        retry(fun, tries - 1)
    end
  end
end
