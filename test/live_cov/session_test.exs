defmodule LiveCov.SessionTest do
  use ExUnit.Case, async: false

  alias LiveCov.Instrumented

  import LiveCov.Test.FixtureBuild, only: [snapshot_fixtures: 1]

  setup_all :snapshot_fixtures

  setup do
    LiveCov.stop()
    :ok
  end

  test "stop(target) restores only the target's instrumented modules" do
    %{instrumented: [:snap_fx, :snap_fx2]} = LiveCov.start([:snap_fx, :snap_fx2])
    apply(:snap_fx2, :hello, [~c"x"])

    assert %{restored: [:snap_fx], still_running: [], failed: []} = LiveCov.stop(:snap_fx)
    assert Instrumented.lookup(:snap_fx) == nil
    assert :code.which(:snap_fx) |> to_string() |> String.ends_with?("snap_fx.beam")

    # The other one keeps counting (other tests may have imported data of its build: the
    # count grows by one call).
    assert Instrumented.lookup(:snap_fx2) != nil
    calls = fn -> LiveCov.Cover.analyse(:snap_fx2, :calls, :module) end
    {:ok, {:snap_fx2, before}} = calls.()
    apply(:snap_fx2, :hello, [~c"y"])
    assert calls.() == {:ok, {:snap_fx2, before + 1}}

    # Modules of the target that are not instrumented are ignored.
    assert %{restored: []} = LiveCov.stop([:snap_fx, :lists, :no_such_module])
    assert %{restored: [:snap_fx2]} = LiveCov.stop([:snap_fx2])
    assert LiveCov.modules() == []
  end
end
