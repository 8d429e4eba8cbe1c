defmodule LiveCov.PathMapTest do
  use ExUnit.Case, async: true
  doctest LiveCov.PathMap

  alias LiveCov.PathMap

  test "from_opts: roots first, then path_map, trailing slashes dropped" do
    assert PathMap.from_opts([]) == {:ok, []}

    assert PathMap.from_opts(compile_root: "/b", runtime_root: "/r/", path_map: [{"/x/", "/y"}]) ==
             {:ok, [{"/b", "/r"}, {"/x", "/y"}]}

    assert {:error, {:invalid_option, msg}} = PathMap.from_opts(compile_root: "/b")
    assert msg =~ "given together"
    assert {:error, {:invalid_option, msg}} = PathMap.from_opts(path_map: [{"/a", :b}])
    assert msg =~ ":path_map"
  end

  test "map: first matching pair, whole segments, root pairs" do
    maps = [{"/build/app", "/srv/app"}, {"/build", "/other"}]
    assert PathMap.map("/build/app/lib/a.ex", maps) == "/srv/app/lib/a.ex"
    assert PathMap.map("/build/app", maps) == "/srv/app"
    assert PathMap.map("/build/lib/b.ex", maps) == "/other/lib/b.ex"
    assert PathMap.map("/elsewhere/c.ex", maps) == "/elsewhere/c.ex"
    assert PathMap.map("/c.ex", [{"/", "/srv"}]) == "/srv/c.ex"
  end

  test "display_name" do
    assert PathMap.display_name("/srv/x.ex", nil) == "/srv/x.ex"
    assert PathMap.display_name("/srv/x.ex", "/") == "/srv/x.ex"
    assert PathMap.display_name("/srvx/x.ex", "/srv") == "/srvx/x.ex"
  end
end
