using Compiled.Nets.Training;

namespace Compiled.Nets.Reporting;

/// <summary>PNG plots of a training run (ScottPlot, headless).</summary>
public static class Plots
{
    /// <summary>Loss and accuracy curves per epoch (train and validation).</summary>
    public static void Curves(IReadOnlyList<EpochMetrics> history, string lossPath, string accuracyPath)
    {
        double[] epochs = history.Select(h => (double)h.Epoch).ToArray();
        Save(lossPath, "Loss", epochs, ("train", history.Select(h => h.TrainLoss).ToArray()), ("validation", history.Select(h => h.ValidationLoss).ToArray()));
        Save(accuracyPath, "Accuracy", epochs, ("train", history.Select(h => h.TrainAccuracy).ToArray()), ("validation", history.Select(h => h.ValidationAccuracy).ToArray()));
    }

    private static void Save(string path, string title, double[] x, params (string Label, double[] Y)[] series)
    {
        var plot = new ScottPlot.Plot();
        foreach (var (label, y) in series)
        {
            if (y.All(double.IsNaN)) continue;
            var s = plot.Add.Scatter(x, y);
            s.LegendText = label;
        }
        plot.Title(title);
        plot.XLabel("epoch");
        plot.ShowLegend();
        plot.SavePng(path, 800, 500);
    }

    /// <summary>The confusion matrix as a heat map (rows: actual, columns: predicted).</summary>
    public static void ConfusionMatrix(ConfusionMatrix m, IReadOnlyList<string> names, string path)
    {
        // ScottPlot draws row 0 of a heat map at the top, which is where actual class 0 belongs.
        var data = new double[m.Classes, m.Classes];
        for (int a = 0; a < m.Classes; a++)
            for (int p = 0; p < m.Classes; p++) data[a, p] = m[a, p];
        var plot = new ScottPlot.Plot();
        var hm = plot.Add.Heatmap(data);
        hm.Colormap = new ScottPlot.Colormaps.Viridis();
        plot.Add.ColorBar(hm);
        plot.Title("Confusion matrix (rows: actual, columns: predicted)");
        var ticks = Enumerable.Range(0, m.Classes).ToArray();
        plot.Axes.Bottom.SetTicks(ticks.Select(i => (double)i).ToArray(), names.ToArray());
        plot.Axes.Left.SetTicks(ticks.Select(i => (double)(m.Classes - 1 - i)).ToArray(), names.ToArray());
        plot.SavePng(path, 900, 800);
    }
}
