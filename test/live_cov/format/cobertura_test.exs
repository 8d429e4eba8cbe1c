Code.require_file("../../fixtures/report_app/report_fixture.exs", __DIR__)

defmodule LiveCov.Format.CoberturaTest do
  use ExUnit.Case, async: true

  alias LiveCov.Format.Cobertura
  alias LiveCov.ReportFixture, as: Fx

  if Code.ensure_loaded?(:xmerl_scan) do
    require Record

    Record.defrecordp(
      :xml_element,
      Record.extract(:xmlElement, from_lib: "xmerl/include/xmerl.hrl")
    )

    Record.defrecordp(
      :xml_attribute,
      Record.extract(:xmlAttribute, from_lib: "xmerl/include/xmerl.hrl")
    )

    Record.defrecordp(:xml_text, Record.extract(:xmlText, from_lib: "xmerl/include/xmerl.hrl"))

    defp parse(stats, opts \\ []) do
      xml = stats |> Cobertura.render(opts) |> IO.iodata_to_binary()
      {doc, rest} = :xmerl_scan.string(String.to_charlist(xml), quiet: true)
      assert rest == []
      doc
    end

    defp xpath(path, node), do: :xmerl_xpath.string(String.to_charlist(path), node)

    defp attr(node, name) do
      node
      |> xml_element(:attributes)
      |> Enum.find_value(fn a ->
        if xml_attribute(a, :name) == name, do: to_string(xml_attribute(a, :value))
      end)
    end

    test "root totals match the stats" do
      stats = Fx.stats_with_missing()
      doc = parse(stats)
      assert xml_element(doc, :name) == :coverage
      assert attr(doc, :"lines-valid") == "14"
      assert attr(doc, :"lines-covered") == "10"
      assert_in_delta String.to_float(attr(doc, :"line-rate")), 10 / 14, 1.0e-12
      assert attr(doc, :timestamp) == "1704164645000"
      [source] = xpath("/coverage/sources/source/text()", doc)
      assert to_string(xml_text(source, :value)) == Fx.dir()
    end

    test "classes and lines round-trip" do
      stats = Fx.stats_with_missing()
      doc = parse(stats)
      classes = xpath("//class", doc)
      assert length(classes) == length(stats.files)

      for f <- stats.files do
        [class] = Enum.filter(classes, &(attr(&1, :filename) == f.filename))

        lines =
          for l <- xpath("lines/line", class), into: %{} do
            {String.to_integer(attr(l, :number)), String.to_integer(attr(l, :hits))}
          end

        expected =
          for {%{coverage: c}, i} <- Enum.with_index(f.source, 1), c != nil, into: %{}, do: {i, c}

        assert lines == expected
        {rate, ""} = Float.parse(attr(class, :"line-rate"))
        assert_in_delta rate, if(f.sloc == 0, do: 1.0, else: f.hits / f.sloc), 1.0e-12
      end
    end

    test "packages by directory, classes named after modules, methods with signatures" do
      doc = parse(Fx.stats())
      packages = xpath("//package", doc) |> Enum.map(&attr(&1, :name))
      assert packages == ["lib.report_app", "src"]

      [shapes] = xpath(~s{//class[@filename="lib/report_app/shapes.ex"]}, doc)
      assert attr(shapes, :name) == "ReportApp.Shapes.Circle,ReportApp.Shapes.Square"

      [calc] = xpath(~s{//class[@filename="lib/report_app/calc.ex"]}, doc)

      methods =
        for m <- xpath("methods/method", calc) do
          [line] = xpath("lines/line", m)
          {attr(m, :name), attr(m, :signature), attr(line, :number), attr(line, :hits)}
        end

      assert methods == [
               {"add", "/2", "4", "4"},
               {"divide", "/2", "8", "2"},
               {"sum", "/1", "16", "1"}
             ]

      # several modules in one file: method names carry the module
      assert xpath("methods/method", shapes) |> Enum.map(&attr(&1, :name)) ==
               [
                 "ReportApp.Shapes.Circle.area",
                 "ReportApp.Shapes.Square.area",
                 "ReportApp.Shapes.Square.perimeter"
               ]
    end

    test "special characters are escaped" do
      data = [%{module: :"a<b>&\"", source: "/x/we&ird <dir>/f.ex", lines: %{1 => 0}}]
      doc = data |> LiveCov.Stats.build(root: "/x") |> parse(version: "1<2")
      [class] = xpath("//class", doc)
      assert attr(class, :filename) == "we&ird <dir>/f.ex"
      assert attr(class, :name) == "a<b>&\""
      assert attr(doc, :version) == "1<2"
    end

    test "empty stats are still valid" do
      doc = parse(LiveCov.Stats.build([], []))
      assert attr(doc, :"lines-valid") == "0"
      assert attr(doc, :"line-rate") == "1"
    end
  else
    IO.puts(:stderr, """

    !!! SKIPPING Cobertura round-trip tests: Erlang's :xmerl is not installed.
    !!! Run scripts/install_report_consumers.sh (Debian package erlang-xmerl).
    """)

    @tag skip: "xmerl not installed (apt-get install erlang-xmerl)"
    test "Cobertura round-trip with :xmerl" do
      assert Cobertura.render(Fx.stats(), [])
    end
  end
end
