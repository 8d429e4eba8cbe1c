defmodule LiveCov.InstrumentedTest do
  use ExUnit.Case, async: false

  alias LiveCov.{Instrumented, ModuleInfo}

  import LiveCov.Test.FixtureBuild, only: [snapshot_fixtures: 1]

  setup_all :snapshot_fixtures

  test "reads without a process; only the pipeline writes" do
    LiveCov.stop()
    assert Instrumented.modules() == []
    assert Instrumented.lookup(:snap_fx) == nil

    %{instrumented: [:snap_fx2, :snap_fx]} = LiveCov.start([:snap_fx2, :snap_fx])

    assert [%ModuleInfo{module: :snap_fx}, %ModuleInfo{module: :snap_fx2}] =
             Instrumented.modules()

    assert %ModuleInfo{module: :snap_fx, mode: :counts} = Instrumented.lookup(:snap_fx)

    # The table is protected: the pipeline's process owns it.
    assert_raise ArgumentError, fn -> Instrumented.delete(:snap_fx) end
    LiveCov.stop()
    assert Instrumented.modules() == []
  end
end
