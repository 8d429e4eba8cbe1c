defmodule LiveCov.Prune.VersionTest do
  use ExUnit.Case, async: false

  alias LiveCov.{Instrumented, ModuleInfo}
  alias LiveCov.Prune.Version

  import LiveCov.Test.FixtureBuild, only: [snapshot_fixtures: 1]

  setup_all :snapshot_fixtures

  setup do
    LiveCov.stop()
    on_exit(fn -> LiveCov.stop() end)

    %{instrumented: [:snap_fx2]} =
      LiveCov.start(:snap_fx2, mode: :coverage, prune: [interval: nil])

    %{info: Instrumented.lookup(:snap_fx2)}
  end

  test "every site pruned: the original, unless kept instrumented", %{info: info} do
    all = MapSet.new(0..(ModuleInfo.size(info) - 1))
    assert Version.compile(info, all) == {:ok, :original}
    assert {:ok, bin} = Version.compile(info, all, true)
    assert is_binary(bin) and bin != info.instrumented
  end

  test "from the recipe, or from the original beam when there is none", %{info: info} do
    pruned = MapSet.new([0])
    assert {:ok, from_recipe} = Version.compile(info, pruned)
    assert {:ok, from_beam} = Version.compile(%{info | cache: nil}, pruned)
    assert :beam_lib.md5(from_recipe) == :beam_lib.md5(from_beam)

    assert {:error, {:no_original, _}} =
             Version.compile(%{info | cache: nil, original: nil}, pruned)
  end
end
