defmodule LiveCov.NetTest do
  use ExUnit.Case, async: true
  doctest LiveCov.Net

  test "loopback? and what is not" do
    assert LiveCov.Net.loopback?({0, 0, 0, 0, 0, 0, 0, 1})
    refute LiveCov.Net.loopback?({0, 0, 0, 0, 0, 0, 0, 0})
    refute LiveCov.Net.loopback?({0, 0, 0, 0, 0, 0xFFFF, 0x0A00, 1})
    refute LiveCov.Net.loopback?(:nope)
  end
end
