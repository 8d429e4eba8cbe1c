Code.require_file("../../fixtures/report_app/report_fixture.exs", __DIR__)

defmodule LiveCov.Format.HTMLTest do
  use ExUnit.Case, async: true

  alias LiveCov.Format.HTML
  alias LiveCov.ReportFixture, as: Fx

  defp html(stats \\ Fx.stats_with_missing(), opts \\ []),
    do: stats |> HTML.render(opts) |> IO.iodata_to_binary()

  test "one self-contained page: no external resources" do
    page = html()
    assert page =~ ~r/\A<!DOCTYPE html>/
    assert page =~ "<style>"
    assert page =~ "<script>"
    refute page =~ ~r/<link\b/i
    refute page =~ ~r/<script[^>]+src=/i
    refute page =~ ~r/(src|href)="(https?:)?\/\//i
    refute page =~ "@import"
    refute page =~ "url("
  end

  test "index lists every file with its percentage and links to its section" do
    page = html()

    for {name, pct} <- [
          {"lib/report_app/calc.ex", "75.0%"},
          {"lib/report_app/gone.ex", "50.0%"},
          {"lib/report_app/ignored.ex", "100.0%"},
          {"lib/report_app/shapes.ex", "66.7%"},
          {"src/report_app_erl.erl", "66.7%"}
        ] do
      assert page =~ ~s(<span class="pct" data-file="#{name}">#{pct}</span>)
    end

    assert page =~ ~s(<span id="total-coverage" class="pct cov-mid">71.4%</span>)
    # sections f-1..f-5 in the order of stats.files, linked from the index
    for i <- 1..5 do
      assert page =~ ~s(href="#f-#{i}")
      assert page =~ ~s(id="f-#{i}")
    end

    assert page =~ "source missing"
  end

  test "per-line hit counts and classes" do
    page = html()
    # calc.ex is f-1; line 5 hit 4 times, line 9 missed, line 1 not executable
    assert page =~
             ~s(<tr class="h" id="f-1-L5"><td class="n"><a href="#f-1-L5">5</a></td><td class="c">4</td><td class="s">    a + b</td></tr>)

    assert page =~ ~s(<tr class="m" id="f-1-L9">)

    assert page =~
             ~s(<tr id="f-1-L1"><td class="n"><a href="#f-1-L1">1</a></td><td class="c"></td>)
  end

  test "source text and names are escaped" do
    dir = Path.join(System.tmp_dir!(), "live_cov_html_#{System.unique_integer([:positive])}")
    File.mkdir_p!(dir)
    on_exit(fn -> File.rm_rf!(dir) end)
    path = Path.join(dir, "x<y>.ex")
    File.write!(path, "</script><script>alert(1)</script> & \"q\"\n")
    stats = LiveCov.Stats.build([%{module: M, source: path, lines: %{1 => 1}}], root: dir)
    page = html(stats, title: "<T>")
    assert page =~ "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot;"
    assert page =~ "x&lt;y&gt;.ex"
    assert page =~ "<title>&lt;T&gt;</title>"
    # the only </script> is the end of our own inline script
    assert length(String.split(page, "</script>")) == 2
  end

  test "threshold picks the colour class" do
    assert html(Fx.stats(), threshold: 70) =~
             ~s(<span id="total-coverage" class="pct cov-high">75.0%</span>)
  end

  test "empty stats render" do
    page = html(LiveCov.Stats.build([], []))
    assert page =~ "100.0%"
    assert page =~ "</html>"
  end
end
