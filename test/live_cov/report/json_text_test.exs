defmodule LiveCov.Report.JSONTextTest do
  use ExUnit.Case, async: true

  alias LiveCov.Report.JSONText

  doctest LiveCov.Report.JSONText

  defp enc(t), do: t |> JSONText.encode!() |> IO.iodata_to_binary()

  test "scalars" do
    assert enc(nil) == "null"
    assert enc(true) == "true"
    assert enc(false) == "false"
    assert enc(0) == "0"
    assert enc(-12_345_678_901_234_567_890) == "-12345678901234567890"
    assert enc(71.4) == "71.4"
    assert enc(100.0) == "100.0"
    assert enc(1.0e-7) == "1.0e-7"
    assert enc(:atom) == ~s("atom")
    assert enc(Some.Module) == ~s("Elixir.Some.Module")
  end

  test "string escaping" do
    assert enc("plain") == ~s("plain")
    assert enc(~s(q"b\\)) == ~S("q\"b\\")
    assert enc("\n\r\t\b\f") == ~S("\n\r\t\b\f")
    assert enc(<<0, 1, 0x1F>>) == ~S("\u0000\u0001\u001F")
    assert enc("é😀") == ~s("é😀")
    assert enc("a\u2028b\u2029") == ~S("a\u2028b\u2029")
    assert enc("</script>") == ~s("</script>")
    # invalid UTF-8 bytes become U+FFFD
    assert enc(<<"a", 0xFF, "b">>) == ~s("a\uFFFDb")
    assert enc(<<0xC3>>) == ~s("\uFFFD")
  end

  test "containers; object keys sorted" do
    assert enc([]) == "[]"
    assert enc(%{}) == "{}"
    assert enc([1, [2, []], %{}]) == "[1,[2,[]],{}]"
    assert enc(%{"b" => 1, :a => [nil], 3 => "x"}) == ~s({"3":"x","a":[null],"b":1})
  end

  test "unsupported terms are errors, not crashes" do
    assert {:error, {:unsupported_term, msg}} = JSONText.encode(%{a: {1, 2}})
    assert msg =~ "{1, 2}"
    assert {:error, {:unsupported_term, _}} = JSONText.encode(self())
    assert {:error, {:unsupported_term, _}} = JSONText.encode(%{{1} => 1})
    assert {:error, {:unsupported_term, _}} = JSONText.encode(~D[2024-01-01])
    assert_raise ArgumentError, fn -> JSONText.encode!([make_ref()]) end
  end

  test "round-trip through decode" do
    term = %{
      "s" => "x\"\\\n\u0001é😀\u2028",
      "n" => [0, -1, 2.5, -1.0e-7, 1.0e21, nil, true, false],
      "o" => %{"nested" => %{"deep" => []}},
      "e" => ""
    }

    assert {:ok, ^term} = term |> JSONText.encode!() |> JSONText.decode()
  end

  test "decode handles standard JSON" do
    assert JSONText.decode(~s( { "a" : [ 1 , 2.0e1, -0.5, 1E2 ] , "b":"\\u00e9\\ud83d\\ude00\\/" } )) ==
             {:ok, %{"a" => [1, 20.0, -0.5, 100.0], "b" => "é😀/"}}
  end

  test "decode rejects malformed input with a position" do
    assert {:error, {:invalid_json, msg}} = JSONText.decode("[1,2")
    assert msg =~ "end of input"
    assert {:error, {:invalid_json, msg}} = JSONText.decode("[1,]")
    assert msg =~ "byte 3"
    assert {:error, {:invalid_json, _}} = JSONText.decode(~s({"a" 1}))
    assert {:error, {:invalid_json, _}} = JSONText.decode(~s({"a":1,}))
    assert {:error, {:invalid_json, _}} = JSONText.decode("01")
    assert {:error, {:invalid_json, _}} = JSONText.decode(~s("a\nb"))
    assert {:error, {:invalid_json, _}} = JSONText.decode("[] x")
    assert {:error, {:invalid_json, _}} = JSONText.decode("")
  end

  test "matches python's json module when available" do
    case System.find_executable("python3") do
      nil ->
        IO.puts(:stderr, "\n!!! python3 not found: skipping the JSON cross-check")

      py ->
        term = %{"k" => ["\u0000\u001f\"\\/é😀\u2028", 1.5, nil, -3, %{"x" => true}]}
        json = term |> JSONText.encode!() |> IO.iodata_to_binary()
        script = "import json,sys; d=json.loads(sys.stdin.read()); print(json.dumps(d, sort_keys=True, separators=(',',':'), ensure_ascii=False))"
        path = Path.join(System.tmp_dir!(), "live_cov_json_#{System.unique_integer([:positive])}.json")
        File.write!(path, json)
        on_exit(fn -> File.rm(path) end)
        {out, 0} = System.cmd("sh", ["-c", "#{py} -c \"$0\" < \"$1\"", script, path])
        assert {:ok, ^term} = JSONText.decode(String.trim_trailing(out, "\n"))
    end
  end
end
