defmodule LiveCov.CounterTest do
  use ExUnit.Case, async: false

  alias LiveCov.{Counter, Table}
  alias LiveCov.Counter.{Backend, LineCounters, Nif}

  test "both backends implement the whole behaviour" do
    callbacks = Backend.behaviour_info(:callbacks)

    for backend <- [Nif, LineCounters], {f, a} <- callbacks do
      Code.ensure_loaded!(backend)
      assert function_exported?(backend, f, a), "#{inspect(backend)}.#{f}/#{a}"
    end

    assert Counter.backend(:nif) == Nif and Counter.backend(:native) == LineCounters
  end

  test "a NIF site is a call with literal slot and index; a native site is cover's line counter" do
    a = :erl_anno.new(0)

    assert Nif.site_expr(3, 9, 12) ==
             {:call, a, {:remote, a, {:atom, a, LiveCov.Native}, {:atom, a, :bump}},
              [{:integer, a, 3}, {:integer, a, 9}]}

    # cover numbers counters from 1.
    assert LineCounters.site_expr(3, 9, 12) == {:executable_line, 12, 10}
    assert LineCounters.compile_options() == [:force_line_counters]
    assert Nif.compile_options() == []
  end

  test "resolve/1: :auto is native exactly where the runtime counts lines" do
    native? = LiveCov.Runtime.native_coverage?()
    assert Counter.resolve(:auto) == {:ok, if(native?, do: :native, else: :nif)}
    assert Counter.resolve(:nif) == {:ok, :nif}

    if native? do
      assert Counter.resolve(:native) == {:ok, :native}
    else
      assert {:error, {:native_unavailable, msg}} = Counter.resolve(:native)
      assert msg =~ "OTP 27" and msg =~ "backend: :auto or :nif"
    end

    for bad <- [:fast, "native", nil && :x, 1] do
      assert {:error, {:invalid_option, msg}} = Counter.resolve(bad || :x)
      assert msg =~ "use :auto, :native"
    end
  end

  test "resolve/0 follows the application environment" do
    old = Application.get_env(:live_cov, :backend)

    on_exit(fn ->
      if old,
        do: Application.put_env(:live_cov, :backend, old),
        else: Application.delete_env(:live_cov, :backend)
    end)

    Application.put_env(:live_cov, :backend, :nif)
    assert Counter.resolve() == {:ok, :nif}
    Application.put_env(:live_cov, :backend, :bogus)
    assert {:error, {:invalid_option, _}} = Counter.resolve()
  end

  test "a NIF slot's life through the facade: register, bump, read, take, reset" do
    {:ok, slot} = Counter.register(2)
    bump = fn i -> LiveCov.Native.bump(slot, i) end
    bump.(1)
    bump.(1)
    assert Counter.read(slot) == {:ok, [0, 2]}
    assert {:ok, [0, 2]} = Counter.take(slot)
    assert Counter.read(slot) == {:ok, [0, 0]}
    :ok = Counter.add(slot, [5, 0])
    assert Map.fetch!(Counter.snapshot([]), slot) == Table.encode([5, 0])
    :ok = Counter.reset(slot)
    assert Counter.read(slot) == {:ok, [0, 0]}
    # Detaching a slot the NIF counts changes nothing.
    assert Counter.detach(slot) == :ok
    :ok = Counter.unregister(slot)
  end
end
