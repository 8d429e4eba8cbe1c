defmodule LiveCov.TableTest do
  use ExUnit.Case, async: true
  import Bitwise

  alias LiveCov.{Native, Table}

  test "the NIF is loaded and sharded per scheduler" do
    assert Table.loaded?()
    assert Table.check() == :ok
    assert Table.info().nshards == :erlang.system_info(:schedulers)
    # The small-integer layout was verified at load, so bumps decode their literals inline.
    assert Table.info().fast_decode == true
  end

  test "register, bump, read, reset, unregister" do
    {:ok, slot} = Table.register(3)
    assert Table.read(slot) == {:ok, [0, 0, 0]}
    Native.bump(slot, 0)
    Native.bump(slot, 2)
    Native.bump(slot, 2)
    assert Table.read(slot) == {:ok, [1, 0, 2]}
    assert Table.read_binary(slot) == {:ok, Table.encode([1, 0, 2])}
    assert Table.reset(slot) == :ok
    assert Table.read(slot) == {:ok, [0, 0, 0]}
    assert Table.unregister(slot) == :ok
    assert {:error, {:unknown_slot, msg}} = Table.read(slot)
    assert msg =~ "slot #{slot} is not registered"
    assert {:error, {:unknown_slot, _}} = Table.unregister(slot)
  end

  test "slot ids are dense and never reused; re-registering gives fresh counters" do
    {:ok, a} = Table.register(1)
    {:ok, b} = Table.register(1)
    assert b == a + 1
    :ok = Table.unregister(a)
    {:ok, c} = Table.register(1)
    assert c > b
    Native.bump(c, 0)
    assert {:ok, ^c} = Table.register_at(c, 2)
    assert Table.read(c) == {:ok, [0, 0]}
  end

  test "stale and malformed bumps are harmless no-ops" do
    {:ok, slot} = Table.register(1)

    for args <- [
          {slot, 1},
          {slot, -1},
          {-1, 0},
          {1 <<< 40, 0},
          {1 <<< 70, 0},
          {slot, 1 <<< 64},
          {:a, 0},
          {slot, "x"},
          {2.0, 0}
        ] do
      assert Native.bump(elem(args, 0), elem(args, 1)) == :ok
    end

    assert Table.read(slot) == {:ok, [0]}
  end

  test "wrong argument types are badarg, not crashes" do
    assert_raise ArgumentError, fn -> Native.read(:nope) end
    assert_raise ArgumentError, fn -> Native.register(-1) end
    assert_raise ArgumentError, fn -> Native.add(0, :not_a_binary) end
  end

  test "add checks the number of counts" do
    {:ok, slot} = Table.register(2)
    assert Table.add(slot, [5, 7]) == :ok
    assert Table.read(slot) == {:ok, [5, 7]}
    assert {:error, {:bad_counts, msg}} = Table.add(slot, [1, 2, 3])
    assert msg =~ "has 2 counters but 3 counts were given"
    assert Table.read(slot) == {:ok, [5, 7]}
  end

  test "too many sites is a clear error" do
    assert {:error, {:too_many_sites, msg}} = Table.register(1 <<< 27)
    assert msg =~ "exceeds the limit"
  end

  test "a panic in a NIF is an Erlang exception, and the VM lives on" do
    assert_raise ErlangError, ~r/nif_panicked/, fn -> Native.debug_panic("boom") end
    {:ok, slot} = Table.register(1)
    Native.bump(slot, 0)
    assert Table.read(slot) == {:ok, [1]}
  end

  test "snapshot holds every live slot, take zeroes" do
    {:ok, a} = Table.register(2)
    {:ok, b} = Table.register(1)
    Native.bump(a, 1)
    Native.bump(b, 0)
    snap = Table.snapshot()
    assert Table.decode(snap[a]) == [0, 1]
    assert Table.decode(snap[b]) == [1]
    taken = Table.snapshot(take: true)
    assert Table.decode(taken[a]) == [0, 1]
    assert Table.read(a) == {:ok, [0, 0]}
  end

  describe "exact under concurrency" do
    @tag timeout: 300_000
    test "one process per scheduler × millions of bumps sums exactly" do
      {:ok, slot} = Table.register(8)
      procs = :erlang.system_info(:schedulers) * 2
      per = 1_000_000

      1..procs
      |> Enum.map(fn p -> Task.async(fn -> bump_loop(slot, p, per, 8) end) end)
      |> Enum.each(&Task.await(&1, :infinity))

      {:ok, counts} = Table.read(slot)
      assert Enum.sum(counts) == procs * per
      # Each process spreads its bumps evenly over the 8 sites.
      assert Enum.all?(counts, &(&1 == div(procs * per, 8)))
    end

    @tag timeout: 300_000
    test "take under load loses nothing and counts nothing twice" do
      {:ok, slot} = Table.register(1)
      procs = :erlang.system_info(:schedulers) * 2
      per = 500_000
      taker = Task.async(fn -> take_loop(slot, 0) end)

      1..procs
      |> Enum.map(fn p -> Task.async(fn -> bump_loop(slot, p, per, 1) end) end)
      |> Enum.each(&Task.await(&1, :infinity))

      send(taker.pid, :stop)
      taken = Task.await(taker, :infinity)
      {:ok, [rest]} = Table.take(slot)
      assert taken + rest == procs * per
      assert taken > 0
    end
  end

  defp bump_loop(_slot, _p, 0, _sites), do: :ok

  defp bump_loop(slot, p, n, sites) do
    Native.bump(slot, rem(n + p, sites))
    bump_loop(slot, p, n - 1, sites)
  end

  defp take_loop(slot, acc) do
    receive do
      :stop -> acc
    after
      0 ->
        {:ok, counts} = Table.take(slot)
        take_loop(slot, acc + Enum.sum(counts))
    end
  end
end
