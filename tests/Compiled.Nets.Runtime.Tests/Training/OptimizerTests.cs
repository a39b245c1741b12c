using Compiled.Nets.Training;

namespace Compiled.Nets.Runtime.Tests.Training;

/// <summary>Optimizers against the published update rules, computed independently in double, step by step.</summary>
public class OptimizerTests
{
    private static ParameterStore Store()
    {
        var b = new ParameterStoreBuilder();
        b.Add("fc.weight", [2, 3], ParameterRole.Weight, ParameterInit.Uniform(1));
        b.Add("fc.bias", [2], ParameterRole.Bias, ParameterInit.Uniform(1));
        b.Add("norm.weight", [3], ParameterRole.NormWeight, ParameterInit.Uniform(1));
        var s = b.Build();
        s.Initialize(7);
        return s;
    }

    private static double[] Grad(int step, int n) => Enumerable.Range(0, n).Select(i => Math.Sin(step * 1.3 + i * 0.7) * (1 + i % 3)).ToArray();

    private static void Run(Optimizer opt, ParameterStore s, Func<ParameterInfo, double[], double[], int, double[]> reference, int steps = 5)
    {
        var expected = s.Parameters.ToDictionary(p => p.Name, p => s.Value(p).ToArray().Select(v => (double)v).ToArray());
        for (int t = 1; t <= steps; t++)
        {
            foreach (var p in s.Parameters)
            {
                var g = Grad(t, p.Length);
                for (int i = 0; i < g.Length; i++) s.Gradient(p)[i] = (float)g[i];
                if (p.RequiresGrad) expected[p.Name] = reference(p, expected[p.Name], g, t);
            }
            opt.Step();
            foreach (var p in s.Parameters)
                for (int i = 0; i < p.Length; i++)
                    Assert.True(Math.Abs(expected[p.Name][i] - s.Value(p)[i]) < 1e-5, $"{p.Name}[{i}] step {t}: {expected[p.Name][i]} vs {s.Value(p)[i]}");
        }
    }

    [Theory]
    [InlineData(0.0, 0.0, false, 0.0)]
    [InlineData(0.9, 0.0, false, 0.01)]
    [InlineData(0.9, 0.0, true, 0.01)]
    [InlineData(0.8, 0.3, false, 0.0)]
    public void Sgd_MatchesTorchRule(double momentum, double dampening, bool nesterov, double wd)
    {
        using var s = Store();
        var bufs = new Dictionary<string, double[]>();
        Run(new Sgd(s, 0.1f, (float)momentum, (float)dampening, (float)wd, nesterov), s, (p, w, g, t) =>
        {
            double decay = wd; // torch.optim decays every parameter
            var d = g.Select((gi, i) => gi + decay * w[i]).ToArray();
            if (momentum != 0)
            {
                if (!bufs.TryGetValue(p.Name, out var buf)) bufs[p.Name] = buf = (double[])d.Clone();
                else for (int i = 0; i < d.Length; i++) buf[i] = momentum * buf[i] + (1 - dampening) * d[i];
                d = nesterov ? d.Select((di, i) => di + momentum * buf[i]).ToArray() : (double[])buf.Clone();
            }
            return w.Select((wi, i) => wi - 0.1 * d[i]).ToArray();
        });
    }

    [Theory]
    [InlineData(false, 0.0, false)]
    [InlineData(false, 0.1, false)]
    [InlineData(true, 0.1, false)]
    [InlineData(true, 0.1, true)]
    public void Adam_And_AdamW_MatchTorchRule(bool decoupled, double wd, bool transformersGroups)
    {
        using var s = Store();
        var m = new Dictionary<string, double[]>(); var v = new Dictionary<string, double[]>();
        double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8;
        Optimizer opt = decoupled ? new AdamW(s, (float)lr, weightDecay: (float)wd) : new Adam(s, (float)lr, weightDecay: (float)wd);
        if (transformersGroups) opt.DecayPredicate = Optimizer.NoDecayForBiasAndNorm;
        Run(opt, s, (p, w, g, t) =>
        {
            // torch.optim decays every parameter; the Transformers grouping skips biases and norm parameters.
            double decay = !transformersGroups || p.Name.EndsWith(".weight", StringComparison.Ordinal) && !p.Name.StartsWith("norm", StringComparison.Ordinal) ? wd : 0;
            w = (double[])w.Clone();
            if (decoupled) for (int i = 0; i < w.Length; i++) w[i] *= 1 - lr * decay;
            else g = g.Select((gi, i) => gi + decay * w[i]).ToArray();
            if (!m.ContainsKey(p.Name)) { m[p.Name] = new double[w.Length]; v[p.Name] = new double[w.Length]; }
            for (int i = 0; i < w.Length; i++)
            {
                m[p.Name][i] = b1 * m[p.Name][i] + (1 - b1) * g[i];
                v[p.Name][i] = b2 * v[p.Name][i] + (1 - b2) * g[i] * g[i];
                double mh = m[p.Name][i] / (1 - Math.Pow(b1, t)), vh = v[p.Name][i] / (1 - Math.Pow(b2, t));
                w[i] -= lr * mh / (Math.Sqrt(vh) + eps);
            }
            return w;
        });
    }

    [Fact]
    public void FrozenParameters_StayBitIdentical()
    {
        using var s = Store();
        s.Freeze("fc.bias");
        var before = s.Value(s["fc.bias"]).ToArray();
        s.Gradients.Fill(1f);
        new AdamW(s).Step();
        Assert.Equal(before, s.Value(s["fc.bias"]).ToArray());
        Assert.NotEqual(0f, s.Gradient(s["fc.weight"])[0]);
        Assert.Throws<ArgumentException>(() => s.Freeze("no.such."));
    }

    [Fact]
    public void ClipByGlobalNorm_ScalesToMaxNorm_AndRejectsNaN()
    {
        using var s = Store();
        s.Gradient(s["fc.weight"]).Fill(3f); s.Gradient(s["fc.bias"]).Fill(4f);
        double norm = Math.Sqrt(6 * 9 + 2 * 16);
        Assert.Equal(norm, GradientClipping.ClipByGlobalNorm(s, 1f), 4);
        double after = Math.Sqrt(s.Parameters.Sum(p => s.Gradient(p).ToArray().Sum(g => (double)g * g)));
        Assert.Equal(1.0, after, 4);
        s.Gradient(s["fc.bias"])[1] = float.NaN;
        var ex = Assert.Throws<ArithmeticException>(() => GradientClipping.ClipByGlobalNorm(s, 1f));
        Assert.Contains("fc.bias", ex.Message);
    }

    [Fact]
    public void Schedules_MatchHandComputedValues()
    {
        var lin = new LinearWarmupDecaySchedule(2e-5f, 10, 110);
        Assert.Equal(0f, lin.At(0)); Assert.Equal(1e-5f, lin.At(5), 1e-9f); Assert.Equal(2e-5f, lin.At(10), 1e-9f);
        Assert.Equal(1e-5f, lin.At(60), 1e-9f); Assert.Equal(0f, lin.At(110)); Assert.Equal(0f, lin.At(200));
        var step = new StepSchedule(1f, 10, 0.5f);
        Assert.Equal(1f, step.At(9)); Assert.Equal(0.5f, step.At(10)); Assert.Equal(0.25f, step.At(25));
        var cos = new CosineSchedule(1f, 100, 0.1f);
        Assert.Equal(1f, cos.At(0), 1e-6f); Assert.Equal(0.55f, cos.At(50), 1e-6f); Assert.Equal(0.1f, cos.At(100), 1e-6f);
        Assert.Equal(3f, new ConstantSchedule(3f).At(1234));
    }

    [Theory]
    [InlineData("adamw", 1f, 0.999f, 1e-8f, 0.01f, "beta1 must be in [0, 1)")]
    [InlineData("adam", 0.9f, 1f, 1e-8f, 0f, "beta2 must be in [0, 1)")]
    [InlineData("adamw", 0.9f, float.NaN, 1e-8f, 0.01f, "beta2 must be in [0, 1)")]
    [InlineData("adam", 0.9f, 0.999f, -1e-8f, 0f, "eps must be finite and at least 0")]
    [InlineData("adamw", 0.9f, 0.999f, 1e-8f, -0.01f, "weightDecay must be finite and at least 0")]
    [InlineData("sgd", -0.9f, 0f, 0f, 0f, "momentum must be finite and at least 0")]
    [InlineData("sgd", 0.9f, -1f, 0f, 0f, "dampening must be finite and at least 0")]
    [InlineData("sgd", 0.9f, 0f, 0f, float.PositiveInfinity, "weightDecay must be finite")]
    public void Hyperparameters_torch_optim_refuses_are_refused_when_the_optimizer_is_built(string kind, float a, float b, float eps, float decay, string message)
    {
        var s = Store();
        Func<Optimizer> make = kind switch
        {
            "adamw" => () => new AdamW(s, 1e-3f, a, b, eps, decay),
            "adam" => () => new Adam(s, 1e-3f, a, b, eps, decay),
            _ => () => new Sgd(s, 1e-3f, momentum: a, dampening: b, weightDecay: decay),
        };
        Assert.Contains(message, Assert.Throws<ArgumentOutOfRangeException>(make).Message);
        Assert.Throws<ArgumentNullException>(() => new AdamW(null!));
    }

    [Fact]
    public void Schedules_refuse_rates_and_step_counts_that_would_divide_by_zero_or_go_negative()
    {
        Assert.Contains("stepSize must be at least 1", Assert.Throws<ArgumentOutOfRangeException>(() => new StepSchedule(1f, 0, 0.5f)).Message);
        Assert.Contains("gamma", Assert.Throws<ArgumentOutOfRangeException>(() => new StepSchedule(1f, 10, float.NaN)).Message);
        Assert.Contains("warmupSteps must be at least 0", Assert.Throws<ArgumentOutOfRangeException>(() => new LinearWarmupDecaySchedule(1f, -1, 10)).Message);
        Assert.Contains("totalSteps", Assert.Throws<ArgumentOutOfRangeException>(() => new CosineSchedule(1f, -5)).Message);
        Assert.Contains("minLr", Assert.Throws<ArgumentOutOfRangeException>(() => new CosineSchedule(1f, 10, minLr: -1f)).Message);
        Assert.Contains("peakLr", Assert.Throws<ArgumentOutOfRangeException>(() => new LinearWarmupDecaySchedule(float.PositiveInfinity, 1, 10)).Message);
        Assert.Contains("lr", Assert.Throws<ArgumentOutOfRangeException>(() => new ConstantSchedule(-1e-3f)).Message);
        Assert.Equal(0.5f, new LinearWarmupDecaySchedule(1f, 0, 2).At(1)); // no warm-up: decay from the peak
    }

    [Fact]
    public void ClassificationReport_MatchesHandComputed_WithZeroSupportClass()
    {
        var m = new ConfusionMatrix(3);
        // actual 0: predicted 0,0,1 ; actual 1: predicted 1,0 ; class 2 never occurs but is predicted once for actual 1.
        m.Add(0, 0); m.Add(0, 0); m.Add(1, 0); m.Add(1, 1); m.Add(0, 1); m.Add(2, 1);
        Assert.Equal(6, m.Total);
        Assert.Equal(3.0 / 6, m.Accuracy, 12);
        var r = new ClassificationReport(m, ["a", "b", "c"]);
        Assert.Equal(2.0 / 3, r.Classes[0].Precision, 12); Assert.Equal(2.0 / 3, r.Classes[0].Recall, 12);
        Assert.Equal(0.5, r.Classes[1].Precision, 12); Assert.Equal(1.0 / 3, r.Classes[1].Recall, 12);
        Assert.Equal(0, r.Classes[2].Precision); Assert.Equal(0, r.Classes[2].Recall); Assert.Equal(0, r.Classes[2].Support);
        double f1b = 2 * 0.5 * (1.0 / 3) / (0.5 + 1.0 / 3);
        Assert.Equal((2.0 / 3 + f1b + 0) / 3, r.MacroAvg.F1, 12);
        Assert.Equal((3 * 2.0 / 3 + 3 * f1b) / 6, r.WeightedAvg.F1, 12);
        Assert.Contains("weighted avg", r.ToString());
        Assert.Contains("\"accuracy\": 0.5", r.ToJson());
        Assert.StartsWith("class,precision,recall,f1,support", r.ToCsv());
    }
}
