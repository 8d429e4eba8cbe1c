defmodule LiveCov.ModuleInfoTest do
  use ExUnit.Case, async: true
  import Bitwise

  alias LiveCov.ModuleInfo

  @sites [
    {:f, 1, 1, 3},
    {:f, 1, 2, 7},
    {:g, 0, 1, 0},
    {:f, 1, 2, 4_000_000_000},
    {:"h-x", 255, 9, 12}
  ]
  @clauses [
    {:f, 1, 1, 1},
    {:f, 1, 2, 2},
    {:g, 0, 1, 1},
    {:"h-x", 255, 9, 1},
    {:only_clause, 2, 1, 0}
  ]

  test "sites and clauses round-trip through the packed form, in order" do
    info = ModuleInfo.new(module: :m, slot: 3, md5: "x", sites: @sites, clauses: @clauses)
    assert ModuleInfo.site_list(info) == @sites
    assert ModuleInfo.sites(info) == List.to_tuple(@sites)
    assert ModuleInfo.clauses(info) == @clauses
    assert ModuleInfo.size(info) == 5
    assert byte_size(info.site_data) == 12 * 5
    # One entry per function, shared by sites and clauses.
    assert tuple_size(info.functions) == 4
    assert %ModuleInfo{module: :m, slot: 3, md5: "x", mode: :counts} = info
  end

  test "a tuple of sites works too; empty metadata is empty" do
    info = ModuleInfo.new(module: :m, slot: 0, md5: "", sites: List.to_tuple(@sites))
    assert ModuleInfo.site_list(info) == @sites
    assert ModuleInfo.clauses(info) == []

    empty = ModuleInfo.new(module: :m, slot: 0, md5: "", sites: {})
    assert ModuleInfo.size(empty) == 0
    assert ModuleInfo.sites(empty) == {}
  end

  test "the packed form is a fraction of a tuple per site" do
    sites = for f <- 1..50, c <- 1..2, l <- 1..10, do: {:"fun#{f}", 1, c, f * 100 + l}
    info = ModuleInfo.new(module: :m, slot: 0, md5: "", sites: sites)
    tuple_bytes = :erts_debug.flat_size(List.to_tuple(sites)) * :erlang.system_info(:wordsize)
    assert ModuleInfo.packed_bytes(info) * 3 < tuple_bytes
  end

  test "malformed sites are refused with the offending entry named" do
    for bad <- [{:f, 1, 1}, {"f", 1, 1, 1}, {:f, 256, 1, 1}, {:f, 1, -1, 1}, {:f, 1, 1, 1 <<< 32}] do
      assert_raise ArgumentError, ~r/is not a site or clause/, fn ->
        ModuleInfo.new(module: :m, slot: 0, md5: "", sites: [bad])
      end
    end

    assert_raise KeyError, fn -> ModuleInfo.new(module: :m, slot: 0, md5: "") end
  end
end
