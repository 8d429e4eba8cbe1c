defmodule LiveCov.Format.TextTest do
  use ExUnit.Case, async: true

  alias LiveCov.Format.Text

  test "escape_xml" do
    assert IO.iodata_to_binary(Text.escape_xml(~s(<a href="x">&'</a>))) ==
             "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"

    assert IO.iodata_to_binary(Text.escape_xml("tab\there\u0001")) == "tab\there"
    assert Text.escape_xml("plain é") == "plain é"
  end

  test "escape_xml_lines escapes each line as escape_xml does" do
    lines = ["a < b", "plain", "x & \"y\""]
    assert Text.escape_xml_lines(lines) == Enum.map(lines, &Text.escape_xml/1)
    assert Text.escape_xml_lines([]) == []
  end

  test "pct" do
    assert Text.pct(75.0) == "75.0"
    assert Text.pct(100) == "100.0"
    assert Text.pct(66.66) == "66.7"
  end

  test "qualified_name" do
    assert Text.qualified_name(%{module: A.B, name: "f/1"}) == "A.B.f/1"
    assert Text.qualified_name(%{module: A.B, name: "A.B.f/1"}) == "A.B.f/1"
    assert Text.qualified_name(%{module: :mod, name: "f/1"}) == "mod:f/1"
  end
end
