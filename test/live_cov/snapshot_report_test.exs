defmodule LiveCov.SnapshotReportTest do
  use ExUnit.Case, async: false

  alias LiveCov.SnapshotReport
  alias LiveCov.Test.FixtureBuild

  import LiveCov.Test.FixtureBuild, only: [snapshot_fixtures: 1]

  setup_all :snapshot_fixtures

  setup do
    FixtureBuild.snapshot_instrumented!()
  end

  test "analyse of a snapshot equals the live analysis" do
    snap = LiveCov.snapshot()

    for a <- [:calls, :coverage], l <- [:line, :clause, :function, :module] do
      assert SnapshotReport.analyse(snap, :snap_fx, a, l) == LiveCov.Cover.analyse(:snap_fx, a, l)
    end

    assert {:error, {:not_in_snapshot, :nope}} =
             SnapshotReport.analyse(snap, :nope, :calls, :line)
  end

  test "module data and the report of a snapshot are the live ones" do
    snap = LiveCov.snapshot()
    live = LiveCov.module_data() |> Enum.sort_by(& &1.module)
    assert SnapshotReport.module_data(snap) |> Enum.sort_by(& &1.module) == live

    assert SnapshotReport.module_data(snap, modules: [:snap_fx2]) |> Enum.map(& &1.module) == [
             :snap_fx2
           ]

    assert SnapshotReport.report(snap).coverage == LiveCov.total_coverage()
  end
end
