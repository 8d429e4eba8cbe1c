defmodule LiveCov.AtomicFileTest do
  use ExUnit.Case, async: true

  alias LiveCov.AtomicFile

  @moduletag :tmp_dir

  test "writes through a temporary file and a rename, creating directories", %{tmp_dir: dir} do
    path = Path.join([dir, "a", "b", "f.txt"])
    assert AtomicFile.write(path, ["one", ?\s, "two"]) == :ok
    assert File.read!(path) == "one two"
    assert AtomicFile.write(path, "three") == :ok
    assert File.read!(path) == "three"
    assert File.ls!(Path.dirname(path)) == ["f.txt"]
  end

  test "errors name the step and the file", %{tmp_dir: dir} do
    assert {:error, {:mkdir, "/proc/live_cov/x", :enoent} = why} =
             AtomicFile.write("/proc/live_cov/x", "x")

    assert AtomicFile.describe(why) =~
             "cannot write /proc/live_cov/x: cannot create /proc/live_cov"

    # A directory in the way of the rename; the temporary file is removed.
    target = Path.join(dir, "taken")
    File.mkdir_p!(Path.join(target, "inside"))
    assert {:error, {:rename, ^target, _}} = AtomicFile.write(target, "x")
    assert File.ls!(dir) == ["taken"]
  end
end
