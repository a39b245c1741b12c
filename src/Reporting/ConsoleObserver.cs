using Compiled.Nets.Training;
using Spectre.Console;

namespace Compiled.Nets.Reporting;

/// <summary>
/// Training progress on the console: a live per-batch bar (loss, accuracy, samples/s) on an interactive terminal,
/// plain lines when output is redirected (CI logs), and an epoch table.
/// </summary>
public sealed class ConsoleObserver : ITrainingObserver
{
    private readonly IAnsiConsole _console;
    private readonly bool _interactive;
    private ProgressContext? _context;
    private ProgressTask? _task;
    private Task? _progressRun;
    private TaskCompletionSource? _epochDone;
    private int _lastPrinted;

    /// <summary>Creates the observer on the default console.</summary>
    public ConsoleObserver(IAnsiConsole? console = null)
    {
        _console = console ?? AnsiConsole.Console;
        _interactive = !Console.IsOutputRedirected && _console.Profile.Capabilities.Interactive;
    }

    public void EpochStarted(int epoch, int epochs, int batches)
    {
        _lastPrinted = 0;
        if (!_interactive) { _console.WriteLine($"epoch {epoch}/{epochs}: {batches} batches"); return; }
        var ready = new TaskCompletionSource();
        _epochDone = new TaskCompletionSource();
        var done = _epochDone;
        _progressRun = _console.Progress().AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .StartAsync(async ctx =>
            {
                _context = ctx;
                _task = ctx.AddTask($"epoch {epoch}/{epochs}", maxValue: batches);
                ready.SetResult();
                await done.Task;
            });
        ready.Task.Wait();
    }

    public void BatchCompleted(int epoch, int batch, int batches, double loss, double accuracy, double samplesPerSecond)
    {
        if (_task is not null)
        {
            _task.Value = batch;
            _task.Description = $"epoch {epoch} loss {loss:F4}{Accuracy(accuracy, "P1")} {samplesPerSecond:F0}/s";
        }
        else if (batch * 10 / batches > _lastPrinted)
        {
            _lastPrinted = batch * 10 / batches;
            _console.WriteLine($"  batch {batch}/{batches}  loss {loss:F4} {Accuracy(accuracy, "P2")}  {samplesPerSecond:F0} samples/s");
        }
    }

    public void EpochCompleted(EpochMetrics m, bool improved)
    {
        if (_epochDone is not null) { _epochDone.SetResult(); _progressRun?.Wait(); _epochDone = null; _task = null; _context = null; }
        string val = double.IsNaN(m.ValidationLoss) ? "" : $"  val loss {m.ValidationLoss:F4} {Accuracy(m.ValidationAccuracy, "P2").Replace("acc", "val acc")}";
        _console.MarkupLineInterpolated($"epoch {m.Epoch}: train loss {m.TrainLoss:F4} {Accuracy(m.TrainAccuracy, "P2")}{val}  {m.Seconds:F1}s ({m.SamplesPerSecond:F0} samples/s){(improved ? "  *best*" : "")}");
    }

    /// <summary>" acc 91.2 %", or nothing for a regressor (whose accuracy is NaN).</summary>
    private static string Accuracy(double accuracy, string format) =>
        double.IsNaN(accuracy) ? "" : " acc " + accuracy.ToString(format, System.Globalization.CultureInfo.CurrentCulture);

    public void EarlyStopped(int epoch, int bestEpoch) =>
        _console.MarkupLineInterpolated($"[yellow]early stopping after epoch {epoch}; restoring epoch {bestEpoch}[/]");

    /// <summary>Prints a classification report as a table.</summary>
    public void Report(ClassificationReport report)
    {
        var table = new Table().AddColumns("class", "precision", "recall", "f1-score", "support");
        foreach (var c in report.Classes.Append(report.MacroAvg).Append(report.WeightedAvg))
            table.AddRow(Markup.Escape(c.Name), $"{c.Precision:F4}", $"{c.Recall:F4}", $"{c.F1:F4}", $"{c.Support}");
        table.AddRow("accuracy", "", "", $"{report.Accuracy:F4}", $"{report.Total}");
        _console.Write(table);
    }
}
