defmodule LiveCov.CountsTest do
  use ExUnit.Case, async: false

  alias LiveCov.{Counts, Instrumented, ModuleInfo}

  import LiveCov.Test.FixtureBuild, only: [snapshot_fixtures: 1]

  setup_all :snapshot_fixtures

  defmodule OnePerSite do
    @moduledoc false
    @behaviour LiveCov.Counts.Source
    @impl true
    def counts(infos), do: Map.new(infos, &{&1.module, List.duplicate(1, ModuleInfo.size(&1))})
  end

  setup do
    wired = :persistent_term.get({Counts, :sources})
    on_exit(fn -> Counts.put_sources(wired) end)
    LiveCov.stop()
    %{wired: wired}
  end

  test "the application wires covered nodes and imported data as sources", %{wired: wired} do
    assert wired == [LiveCov.Nodes, LiveCov.Imported]

    for source <- wired do
      behaviours = source.module_info(:attributes) |> Keyword.get_values(:behaviour)
      assert LiveCov.Counts.Source in List.flatten(behaviours)
    end
  end

  test "every source's counts add to this node's table, site by site" do
    %{instrumented: [:snap_fx2]} = LiveCov.start(:snap_fx2)
    apply(:snap_fx2, :hello, [~c"x"])
    info = Instrumented.lookup(:snap_fx2)

    # This node's table alone (other tests may have left imported data of the same build).
    :ok = Counts.put_sources([])
    local = Counts.of(info)
    assert Enum.sum(local) > 0

    :ok = Counts.put_sources([OnePerSite])
    assert Counts.of(info) == Enum.map(local, &(&1 + 1))
    :ok = Counts.put_sources([OnePerSite, OnePerSite])
    assert Counts.collect([info]) == %{snap_fx2: Enum.map(local, &(&1 + 2))}
  end

  test "add/2" do
    assert Counts.add([1, 2], [3, 4]) == [4, 6]
    assert Counts.add([1, 2], nil) == [1, 2]
  end
end
