defmodule LiveCov.CounterTest do
  use ExUnit.Case, async: true

  alias LiveCov.{Counter, Table}

  test "the NIF table is the backend and implements the whole behaviour" do
    assert Counter.backend() == Table
    Code.ensure_loaded!(Table)
    callbacks = Counter.behaviour_info(:callbacks)
    assert {:bump_expr, 2} in callbacks and {:snapshot, 1} in callbacks
    for {f, a} <- callbacks, do: assert(function_exported?(Table, f, a), "#{f}/#{a}")
  end

  test "bumps go where the backend says: a call with literal slot and index" do
    a = :erl_anno.new(0)

    assert Table.bump_expr(3, 9) ==
             {:call, a, {:remote, a, {:atom, a, LiveCov.Native}, {:atom, a, :bump}},
              [{:integer, a, 3}, {:integer, a, 9}]}

    assert LiveCov.Instrument.bump_expr(3, 9) == Table.bump_expr(3, 9)
  end

  test "a slot's life through the behaviour: register, bump, read, take, reset" do
    {:ok, slot} = Table.register(2)
    bump = fn i -> LiveCov.Native.bump(slot, i) end
    bump.(1)
    bump.(1)
    assert Table.read(slot) == {:ok, [0, 2]}
    assert {:ok, [0, 2]} = Table.take(slot)
    assert Table.read(slot) == {:ok, [0, 0]}
    :ok = Table.add(slot, [5, 0])
    assert Map.fetch!(Table.snapshot([]), slot) == Table.encode([5, 0])
    :ok = Table.reset(slot)
    assert Table.read(slot) == {:ok, [0, 0]}
    :ok = Table.unregister(slot)
  end
end
