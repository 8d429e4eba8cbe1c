defmodule LiveCov.PipelineTest do
  use ExUnit.Case, async: false

  alias LiveCov.{Counter, Instrumented, Pipeline, Table}
  alias LiveCov.Test.FixtureBuild

  setup_all do
    dir = FixtureBuild.erlang("test/fixtures/core/core_loop.erl")
    on_exit(fn -> LiveCov.stop() end)
    {:ok, dir: dir}
  end

  setup do
    LiveCov.stop()
    :ok
  end

  test "instrumenting again starts from the original beam with fresh counters" do
    assert [{:ok, :core_loop}] = Pipeline.instrument([:core_loop])
    first = Instrumented.lookup(:core_loop)
    3 = apply(:core_loop, :add, [1, 2])
    assert {:ok, counts} = Counter.read(first.slot)
    assert Enum.sum(counts) == 1

    assert [{:ok, :core_loop}] = Pipeline.instrument([:core_loop])
    second = Instrumented.lookup(:core_loop)
    assert second.slot != first.slot
    assert second.md5 == first.md5
    assert LiveCov.ModuleInfo.sites(second) == LiveCov.ModuleInfo.sites(first)
    assert {:ok, fresh} = Counter.read(second.slot)
    assert Enum.sum(fresh) == 0
    assert {:error, {:unknown_slot, _}} = Counter.read(first.slot)
  end

  test "an unknown compile profile is refused for every target, before anything is compiled" do
    assert [{:error, :core_loop, {:invalid_option, msg}}] =
             Pipeline.instrument([:core_loop], optimize: :max)

    assert msg =~ "optimize: :max"
    assert msg =~ ":coverage or :full"
    assert Instrumented.lookup(:core_loop) == nil

    # Through LiveCov.start: once for the call, not once per module.
    assert {:error, {:invalid_option, msg}} =
             LiveCov.start([:core_loop, :lists], optimize: "full")

    assert msg =~ ~s(optimize: "full")
    assert Instrumented.lookup(:core_loop) == nil
  end

  test "stop restores the original code without killing processes still running it" do
    original_md5 = :core_loop.module_info(:md5)
    [{:ok, :core_loop}] = Pipeline.instrument([:core_loop])
    refute :core_loop.module_info(:md5) == original_md5

    parent = self()
    # spin/1 loops through local calls: it stays in the instrumented version.
    pid = spawn(:core_loop, :spin, [parent])
    Process.sleep(30)

    assert %{restored: [:core_loop], still_running: [{:core_loop, [^pid]}], failed: []} =
             LiveCov.stop()

    assert Process.alive?(pid)
    assert :core_loop.module_info(:md5) == original_md5
    assert :code.which(:core_loop) |> to_string() =~ "core_loop.beam"

    # While the old instrumented code is still in use, nothing new can be loaded without a
    # kill, so instrumenting is refused with the pids named.
    assert [{:error, :core_loop, {:old_code_in_use, msg}}] = Pipeline.instrument([:core_loop])
    assert msg =~ inspect(pid)

    send(pid, :stop)
    assert_receive {:stopped, ^pid}, 1000
    Process.sleep(10)
    assert LiveCov.modules() == []
    assert [{:ok, :core_loop}] = Pipeline.instrument([:core_loop])
  end

  test "instrumenting is refused while an older instrumented version still runs" do
    [{:ok, :core_loop}] = Pipeline.instrument([:core_loop])
    parent = self()
    pid = spawn(:core_loop, :spin, [parent])
    Process.sleep(20)
    # Loading the original makes the spinning version old; stopping again cannot load
    # anything until that process leaves it.
    assert %{still_running: [{:core_loop, [^pid]}]} = LiveCov.stop()
    [{:error, :core_loop, {:old_code_in_use, _}}] = Pipeline.instrument([:core_loop])
    send(pid, :stop)
    assert_receive {:stopped, ^pid}, 1000
  end

  test "a failed module is left untouched and its slot is freed" do
    before = Table.info().live_slots

    assert [{:error, :no_such_module_xyz, {:no_beam, msg}}] =
             Pipeline.instrument([:no_such_module_xyz])

    assert msg =~ "no_such_module_xyz"
    assert Table.info().live_slots == before
  end

  test "LiveCov.start summarises instrumented and skipped targets", %{dir: dir} do
    summary = LiveCov.start([dir, :lists, :no_such_module_xyz, "/nonexistent/dir"])
    assert summary.instrumented == [:core_loop]
    kinds = Enum.map(summary.skipped, & &1.kind) |> Enum.sort()
    assert kinds == [:no_beam, :no_beam, :sticky]
    assert Enum.all?(summary.skipped, &(is_binary(&1.message) and &1.message != ""))
    assert {:error, {:bad_target, msg}} = LiveCov.start(42)
    assert msg =~ "42"
  end

  test "an application is instrumented through its .app file" do
    summary = LiveCov.start(:eex)
    assert EEx in summary.instrumented
    assert summary.applications == [:eex]
    assert EEx.eval_string("<%= 1 + 1 %>") == "2"
    assert LiveCov.total_coverage() > 0.0
  end
end
