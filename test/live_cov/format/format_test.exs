defmodule LiveCov.FormatTest do
  use ExUnit.Case, async: true

  alias LiveCov.Format

  test "every built-in format implements the behaviour consistently" do
    for {name, mod} <- Format.formats() do
      assert {:ok, ^mod} = Format.fetch(name)
      assert {:ok, ^mod} = Format.fetch(Atom.to_string(name))
      assert mod.name() == name
      assert is_binary(mod.extension())
      assert String.ends_with?(mod.filename(), mod.extension())
      assert LiveCov.Format in Keyword.get(mod.__info__(:attributes), :behaviour, [])
    end
  end

  test "modules implementing the behaviour are accepted" do
    assert {:ok, LiveCov.Format.LCOV} = Format.fetch(LiveCov.Format.LCOV)
  end

  test "unknown formats name the valid ones" do
    assert {:error, {:unknown_format, msg}} = Format.fetch(:pdf)
    assert msg =~ ":pdf"
    assert msg =~ ":lcov" and msg =~ ":cobertura" and msg =~ ":html"
    assert {:error, {:unknown_format, _}} = Format.fetch("nope")
    assert {:error, {:unknown_format, _}} = Format.fetch(String)
    assert {:error, {:unknown_format, _}} = Format.fetch(42)
  end

  test "escape_xml" do
    assert IO.iodata_to_binary(Format.escape_xml(~s(<a href="x">&'</a>))) ==
             "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"

    assert IO.iodata_to_binary(Format.escape_xml("tab\there\u0001")) == "tab\there"
    assert Format.escape_xml("plain é") == "plain é"
  end

  test "qualified_name" do
    assert Format.qualified_name(%{module: A.B, name: "f/1"}) == "A.B.f/1"
    assert Format.qualified_name(%{module: A.B, name: "A.B.f/1"}) == "A.B.f/1"
    assert Format.qualified_name(%{module: :mod, name: "f/1"}) == "mod:f/1"
  end
end
