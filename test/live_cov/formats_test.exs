defmodule LiveCov.FormatsTest do
  use ExUnit.Case, async: true

  alias LiveCov.Formats

  test "every built-in format implements the behaviour consistently" do
    for {name, mod} <- Formats.formats() do
      assert {:ok, ^mod} = Formats.fetch(name)
      assert {:ok, ^mod} = Formats.fetch(Atom.to_string(name))
      assert mod.name() == name
      assert is_binary(mod.extension())
      assert String.ends_with?(mod.filename(), mod.extension())
      assert LiveCov.Format in Keyword.get(mod.__info__(:attributes), :behaviour, [])
    end
  end

  test "modules implementing the behaviour are accepted" do
    assert {:ok, LiveCov.Format.LCOV} = Formats.fetch(LiveCov.Format.LCOV)
  end

  test "unknown formats name the valid ones" do
    assert {:error, {:unknown_format, msg}} = Formats.fetch(:pdf)
    assert msg =~ ":pdf"
    assert msg =~ ":lcov" and msg =~ ":cobertura" and msg =~ ":html"
    assert {:error, {:unknown_format, _}} = Formats.fetch("nope")
    assert {:error, {:unknown_format, _}} = Formats.fetch(String)
    assert {:error, {:unknown_format, _}} = Formats.fetch(42)
  end
end
