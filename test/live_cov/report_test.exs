defmodule LiveCov.ReportTest do
  use ExUnit.Case, async: false

  alias LiveCov.{Imported, Report, Stats}
  alias LiveCov.Test.FixtureBuild

  import LiveCov.Test.FixtureBuild, only: [snapshot_fixtures: 1]

  setup_all :snapshot_fixtures

  setup do
    LiveCov.stop()
    Imported.clear()
    %{instrumented: [:snap_fx2]} = LiveCov.start(:snap_fx2)
    apply(:snap_fx2, :hello, [~c"x"])
    {:ok, dir: FixtureBuild.tmp_dir("report")}
  end

  test "module data, report and total of this node", %{dir: dir} do
    assert [%{module: :snap_fx2, lines: %{6 => 1, 7 => 1}, exact: true} = data] =
             Report.module_data()

    assert data.functions == [{"hello/1", 6, 1}]
    assert %Stats{coverage: 100.0, hits: 2, misses: 0} = Report.build()
    assert Report.total_coverage() == 100.0

    assert {:ok, [path]} = Report.write([:lcov], dir)
    assert File.read!(path) =~ "DA:6,1\nDA:7,1\n"
  end

  test "bad options are errors, not crashes" do
    assert {:error, {:invalid_option, _}} = Report.build(compile_root: "/only/one")
    assert {:error, {:invalid_option, _}} = Report.total_coverage(compile_root: "/only/one")
  end
end
