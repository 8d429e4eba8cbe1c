defmodule LiveCov.DumpsTest do
  use ExUnit.Case, async: false

  alias LiveCov.{Dumps, Imported, Snapshot}
  alias LiveCov.Test.FixtureBuild

  import LiveCov.Test.FixtureBuild, only: [snapshot_fixtures: 1]

  setup_all :snapshot_fixtures

  setup do
    LiveCov.stop()
    Imported.clear()
    assert {:ok, :snap_fx} = LiveCov.Cover.compile_beam(:snap_fx)
    assert {:ok, :snap_fx2} = LiveCov.Cover.compile_beam(:snap_fx2)
    on_exit(fn -> LiveCov.stop() end)
    :ok
  end

  defp total(%Snapshot{counts: counts}),
    do: counts |> Map.values() |> Enum.map(&sum/1) |> Enum.sum()

  defp sum(bin), do: for(<<c::little-64 <- bin>>, reduce: 0, do: (acc -> acc + c))

  test "the same key gets the same dump once; the table is reset only by the first" do
    FixtureBuild.snapshot_work!()
    key = "k-#{System.unique_integer([:positive])}"
    first = LiveCov.dump_and_reset(key: key)
    assert total(first) > 0

    # More work after the dump: a retry replays the first dump and leaves the new counts.
    FixtureBuild.snapshot_work!()
    assert {:replayed, replay} = Dumps.take(key)
    assert replay == first

    second = LiveCov.dump_and_reset(key: key <> "-2")
    assert total(second) == total(first)
    assert total(LiveCov.dump_and_reset()) == 0
  end

  test "forget/1 makes the key dump again; only the last 8 keys are kept" do
    FixtureBuild.snapshot_work!()
    {:new, a} = Dumps.take("forget-me")
    :ok = Dumps.forget("forget-me")
    assert {:new, b} = Dumps.take("forget-me")
    assert total(a) > 0 and total(b) == 0

    for i <- 1..8, do: {:new, _} = Dumps.take("evict-#{i}")
    assert {:replayed, _} = Dumps.take("evict-8")
    assert {:new, _} = Dumps.take("forget-me")
  end

  test "a bad key is refused with the rule" do
    for key <- ["", "has space", String.duplicate("x", 129), :atom, "semi;colon"] do
      assert_raise ArgumentError, ~r/1 to 128 characters/, fn ->
        LiveCov.dump_and_reset(key: key)
      end
    end

    assert Dumps.valid_key?("gw-AZaz09._:-")
  end
end
