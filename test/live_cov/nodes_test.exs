defmodule LiveCov.NodesTest do
  @moduledoc """
  Coverage across real peer nodes (OTP's `:peer`): instrumented code is loaded on every node,
  every node counts in its own table and analysis sums them exactly, through node deaths,
  restarts, network splits, hung nodes and nodes that cannot run LiveCov.
  """
  use ExUnit.Case, async: false

  alias LiveCov.Cover
  alias LiveCov.Nodes
  alias LiveCov.Nodes.Remote
  alias LiveCov.Test.Peers

  @moduletag :peer
  @moduletag timeout: 180_000

  @fx :nodes_cov_fx
  @fx_source """
  -module(nodes_cov_fx).
  -export([ping/0, sign/1, loop/1]).

  ping() ->
      pong.

  sign(X) when X > 0 ->
      pos;
  sign(0) ->
      zero;
  sign(_) ->
      neg.

  loop(0) ->
      done;
  loop(N) ->
      ping(),
      loop(N - 1).
  """

  setup_all do
    Peers.ensure_distributed!("live_cov_test")
    dir = Path.join(System.tmp_dir!(), "live_cov_nodes_#{System.unique_integer([:positive])}")
    File.mkdir_p!(dir)
    src = Path.join(dir, "#{@fx}.erl")
    File.write!(src, @fx_source)

    {:ok, @fx} =
      :compile.file(String.to_charlist(src), [:debug_info, outdir: String.to_charlist(dir)])

    true = :code.add_patha(String.to_charlist(dir))
    {:module, @fx} = :code.load_file(@fx)
    original_md5 = @fx.module_info(:md5)

    on_exit(fn ->
      :code.del_path(String.to_charlist(dir))
      File.rm_rf!(dir)
    end)

    %{original_md5: original_md5}
  end

  setup do
    {:ok, _} = Application.ensure_all_started(:live_cov)
    Cover.stop()
    timeout = Application.get_env(:live_cov, :node_timeout)

    on_exit(fn ->
      Cover.stop()

      if timeout,
        do: Application.put_env(:live_cov, :node_timeout, timeout),
        else: Application.delete_env(:live_cov, :node_timeout)
    end)
  end

  # -- helpers ------------------------------------------------------------------

  defp peer_name(tag), do: :"lcn_#{tag}_#{System.unique_integer([:positive])}"

  # Starts a peer node with the code path of this VM (unless `code_path: false`).
  defp start_peer(name, opts \\ []), do: Peers.start(name, opts)

  defp start_peers(n) do
    for i <- 1..n do
      {pid, node} = start_peer(peer_name("p#{i}"))
      %{pid: pid, node: node}
    end
  end

  defp kill!(node) do
    true = Node.monitor(node, true)
    :erpc.cast(node, :erlang, :halt, [])
    assert_receive {:nodedown, ^node}, 10_000
  end

  defp eventually(fun, timeout \\ 10_000) do
    deadline = System.monotonic_time(:millisecond) + timeout
    do_eventually(fun, deadline)
  end

  defp do_eventually(fun, deadline) do
    if fun.() do
      :ok
    else
      if System.monotonic_time(:millisecond) > deadline, do: flunk("condition never became true")
      Process.sleep(50)
      do_eventually(fun, deadline)
    end
  end

  defp loop(node, n) when node == node(), do: apply(@fx, :loop, [n])
  defp loop(node, n), do: :erpc.call(node, @fx, :loop, [n])

  # Function-level calls of the fixture, as :cover computes them.
  defp calls do
    {:ok, list} = Cover.analyse(@fx, :calls, :function)
    Map.new(list, fn {{@fx, f, a}, n} -> {{f, a}, n} end)
  end

  # What loop/1 runs with the given arguments count.
  defp expected(ns, signs \\ 0) do
    %{{:ping, 0} => Enum.sum(ns), {:loop, 1} => Enum.sum(ns) + length(ns), {:sign, 1} => signs}
  end

  defp fx_md5(node), do: :erpc.call(node, @fx, :module_info, [:md5])

  # -- the cluster ---------------------------------------------------------------

  test "counts of all nodes are summed; a dead node keeps what was collected; a restarted node is synchronised",
       ctx do
    [a, b, c] = start_peers(3)
    nodes = [a.node, b.node, c.node]

    # As :cover: the started nodes, last first.
    assert Cover.start(nodes) == {:ok, Enum.reverse(nodes)}
    assert Cover.which_nodes() == [c.node, b.node, a.node]
    assert Cover.start(nodes ++ [node()]) == {:ok, []}

    assert {:ok, @fx} = Cover.compile_beam(@fx)
    md5 = @fx.module_info(:md5)
    refute md5 == ctx.original_md5

    for n <- nodes do
      assert fx_md5(n) == md5
      assert :erpc.call(n, Remote, :main_node, []) == node()
    end

    loop(node(), 1)
    loop(a.node, 10)
    loop(b.node, 20)
    loop(c.node, 30)
    :pos = :erpc.call(c.node, @fx, :sign, [5])
    :neg = :erpc.call(a.node, @fx, :sign, [-5])
    assert calls() == expected([1, 10, 20, 30], 2)

    assert {:ok, lines} = Cover.analyse(@fx, :calls, :line)
    assert {{@fx, 8}, 1} in lines and {{@fx, 12}, 1} in lines and {{@fx, 10}, 0} in lines

    # b: 5 more runs are flushed, 7 more are not collected before b dies.
    loop(b.node, 5)
    assert Cover.flush([b.node]) == :ok
    loop(b.node, 7)
    kill!(b.node)
    eventually(fn -> Cover.which_nodes() == [c.node, a.node] end)
    assert calls() == expected([1, 10, 20, 30, 5], 2)
    assert Nodes.status()[b.node].status == :lost

    # The others go on.
    loop(a.node, 3)
    loop(c.node, 4)
    assert calls() == expected([1, 10, 20, 30, 5, 3, 4], 2)

    # b restarts under the same name: instrumented again, its old counts kept, new ones added.
    {_pid, b_node} =
      start_peer(b.node |> Atom.to_string() |> String.split("@") |> hd() |> String.to_atom())

    assert b_node == b.node
    eventually(fn -> b.node in Cover.which_nodes() end)
    assert Cover.which_nodes() == [b.node, c.node, a.node]
    assert fx_md5(b.node) == md5
    assert calls() == expected([1, 10, 20, 30, 5, 3, 4], 2)
    loop(b.node, 6)
    assert calls() == expected([1, 10, 20, 30, 5, 3, 4, 6], 2)

    # c is stopped abruptly right after a collection: everything it counted is kept.
    :peer.stop(c.pid)
    eventually(fn -> Cover.which_nodes() == [b.node, a.node] end)
    assert calls() == expected([1, 10, 20, 30, 5, 3, 4, 6], 2)

    # Stopping a node keeps its counts and gives it its original code back.
    assert Cover.stop([a.node]) == :ok
    assert Cover.which_nodes() == [b.node]
    assert fx_md5(a.node) == ctx.original_md5
    assert :erpc.call(a.node, Remote, :main_node, []) == nil
    loop(a.node, 100)
    assert calls() == expected([1, 10, 20, 30, 5, 3, 4, 6], 2)

    assert Cover.stop() == :ok
    assert Cover.which_nodes() == []
    assert fx_md5(b.node) == ctx.original_md5
    assert @fx.module_info(:md5) == ctx.original_md5
  end

  test "a network split: counts made meanwhile are kept, nothing is counted twice, removals catch up",
       ctx do
    {_pid, p} = start_peer(peer_name("split"), connection: :standard_io)
    assert Cover.start(p) == {:ok, [p]}
    assert {:ok, @fx} = Cover.compile_beam(@fx)
    loop(p, 4)
    assert calls() == expected([4])

    true = Node.monitor(p, true)
    true = :erlang.disconnect_node(p)
    assert_receive {:nodedown, ^p}, 5_000
    eventually(fn -> Cover.which_nodes() == [] end)
    assert calls() == expected([4])

    true = Node.connect(p)
    eventually(fn -> Cover.which_nodes() == [p] end)
    loop(p, 3)
    assert calls() == expected([4, 3])

    # Restored on the main node while the node is away: restored there when it is back.
    true = :erlang.disconnect_node(p)
    eventually(fn -> Cover.which_nodes() == [] end)
    assert %{restored: [@fx]} = LiveCov.Pipeline.restore([@fx])
    true = Node.connect(p)
    eventually(fn -> Cover.which_nodes() == [p] end)
    assert fx_md5(p) == ctx.original_md5
  end

  test "instrumenting again starts over on every node; reset zeroes every node" do
    [a, b] = start_peers(2)
    summary = LiveCov.start(@fx, nodes: [a.node, b.node])
    assert summary.instrumented == [@fx]
    assert summary.nodes == [b.node, a.node]
    assert summary.node_errors == []

    loop(a.node, 2)
    loop(b.node, 3)
    assert calls() == expected([2, 3])

    [data] = LiveCov.module_data()
    assert data.lines[5] == 5

    assert {:ok, @fx} = Cover.compile_beam(@fx)
    assert fx_md5(a.node) == @fx.module_info(:md5)
    assert calls() == expected([])
    loop(a.node, 1)
    assert calls() == expected([1])

    assert LiveCov.reset() == :ok
    assert calls() == expected([])
    loop(b.node, 2)
    assert Cover.reset(@fx) == :ok
    assert calls() == expected([])
    loop(b.node, 1)
    assert calls() == expected([1])

    assert %{restored: [@fx]} = LiveCov.stop()
    assert Cover.which_nodes() == []
  end

  test "a hung node does not block collection beyond the timeout; its cached counts are used" do
    Application.put_env(:live_cov, :node_timeout, 300)
    [a, b] = start_peers(2)
    assert {:ok, [_, _]} = Cover.start([a.node, b.node])
    assert {:ok, @fx} = Cover.compile_beam(@fx)
    loop(a.node, 10)
    loop(b.node, 20)
    assert calls() == expected([10, 20])

    # b's LiveCov process hangs; b itself still runs (and counts).
    remote = :erpc.call(b.node, Process, :whereis, [Remote])
    :ok = :erpc.call(b.node, :sys, :suspend, [remote])
    loop(b.node, 5)
    loop(a.node, 2)
    {us, result} = :timer.tc(&calls/0)
    assert result == expected([10, 20, 2])
    assert us < 2_000_000
    assert %{hung: true, error: {:timeout, message}} = Nodes.status()[b.node]
    assert message =~ Atom.to_string(b.node)
    assert b.node in Cover.which_nodes()

    # A reset b cannot take now is applied when it answers again.
    assert Cover.reset() == :ok
    assert calls() == expected([])
    loop(b.node, 2)
    loop(a.node, 1)
    :ok = :erpc.call(b.node, :sys, :resume, [remote])
    assert calls() == expected([1])
    refute Nodes.status()[b.node].hung
    loop(b.node, 3)
    assert calls() == expected([1, 3])

    # The whole of a is frozen (SIGSTOP).
    os_pid = :erpc.call(a.node, :os, :getpid, [])

    try do
      {_, 0} = System.cmd("kill", ["-STOP", to_string(os_pid)])
      loop(b.node, 4)
      {us, result} = :timer.tc(&calls/0)
      assert result == expected([1, 3, 4])
      assert us < 2_000_000
      assert Nodes.status()[a.node].hung
    after
      System.cmd("kill", ["-CONT", to_string(os_pid)])
    end

    loop(a.node, 5)
    assert calls() == expected([1, 3, 4, 5])
  end

  test "a node without LiveCov on its code path, or unreachable, gets a clear error" do
    {_pid, bare} = start_peer(peer_name("bare"), code_path: false)
    [good] = start_peers(1)
    nobody = :"lcn_nobody_#{System.unique_integer([:positive])}@127.0.0.1"

    assert {[], [{^bare, {:live_cov_not_on_path, message}}]} = Nodes.start_nodes([bare])
    assert message =~ Atom.to_string(bare)
    assert message =~ "-pa "
    assert Cover.start(bare) == {:ok, []}
    assert {[], [{^nobody, {:nodedown, message}}]} = Nodes.start_nodes(nobody)
    assert message =~ Atom.to_string(nobody)
    assert {[], [{"x", {:bad_node, _}}]} = Nodes.start_nodes(["x"])
    assert Cover.start(%{not: :a_node}) == {:ok, []}
    assert Cover.stop("x") == :ok
    assert Cover.flush([nil]) == :ok
    assert Cover.which_nodes() == []
    refute Map.has_key?(Nodes.status(), bare)

    # A node that runs its own LiveCov coverage is not taken over.
    {_pid, busy} = start_peer(peer_name("busy"))
    {:ok, _} = :erpc.call(busy, Application, :ensure_all_started, [:live_cov])
    assert %{instrumented: [@fx]} = :erpc.call(busy, LiveCov, :start, [@fx])
    assert {[], [{^busy, {:node_busy, message}}]} = Nodes.start_nodes(busy)
    assert message =~ Atom.to_string(busy)

    summary = LiveCov.start(@fx, nodes: [bare, good.node])
    assert summary.instrumented == [@fx]
    assert summary.nodes == [good.node]
    assert [%{node: ^bare, kind: :live_cov_not_on_path, message: _}] = summary.node_errors
    loop(good.node, 2)
    assert calls() == expected([2])
  end

  test "a covered node refuses the main-node-only functions" do
    [a, b] = start_peers(2)
    assert Cover.start([a.node]) == {:ok, [a.node]}
    assert {:ok, @fx} = Cover.compile_beam(@fx)

    for {fun, args} <- [
          analyse: [@fx, :calls, :function],
          analyse: [],
          modules: [],
          which_nodes: [],
          start: [[b.node]],
          stop: [[b.node]],
          flush: [[b.node]],
          compile_beam: [@fx],
          is_compiled: [@fx],
          reset: [],
          stop: []
        ] do
      assert :erpc.call(a.node, Cover, fun, args) == {:error, :not_main_node},
             "Cover.#{fun}/#{length(args)}"
    end

    assert {:error, {:not_main_node, message}} = :erpc.call(a.node, LiveCov, :start, [@fx])
    assert message =~ Atom.to_string(node())
    assert {:error, {:not_main_node, _}} = :erpc.call(a.node, LiveCov, :report, [])
    assert :erpc.call(a.node, Nodes, :main_node, []) == node()
    assert :erpc.call(b.node, LiveCov.MainNode, :check_main, []) == :ok

    # The node is still covered and counted.
    loop(a.node, 2)
    assert calls() == expected([2])

    assert Cover.stop(a.node) == :ok
    assert :erpc.call(a.node, LiveCov.MainNode, :check_main, []) == :ok
    assert calls() == expected([2])
  end
end
