defmodule LiveCov.JSONTest do
  use ExUnit.Case, async: true
  alias LiveCov.JSON

  test "round-trips the shapes reports use" do
    term = %{"a" => [1, 2.5, nil, true, false, "x\"y\\\n\u00e9\u{1F600}"], "b" => %{"c" => -3}}
    assert {:ok, json} = JSON.encode(term)
    assert JSON.decode!(json) == term
  end

  test "atoms, tuples and structs are mapped" do
    assert JSON.encode!(%{k: :v, t: {1, :two}}) |> JSON.decode!() == %{
             "k" => "v",
             "t" => [1, "two"]
           }

    assert JSON.encode!(%URI{host: "h"}) |> JSON.decode!() |> Map.fetch!("host") == "h"
  end

  test "escaping and pretty output" do
    assert JSON.encode!("</script>\u0001") == ~s("</script>\\u0001")
    assert JSON.encode!(%{"a" => 1}, pretty: true) =~ "\n"
  end

  test "bad input gives a clear error, never a crash" do
    assert {:error, {:invalid_json, msg}} = JSON.decode("{bad")
    assert msg =~ "invalid JSON"
    assert {:error, {:invalid_json, _}} = JSON.decode("")
    assert {:error, {:unencodable, _}} = JSON.encode(<<255>>)
    assert {:error, {:unencodable, _}} = JSON.encode(self())
    assert_raise ArgumentError, fn -> JSON.decode!("[1,") end
  end
end
