namespace Compiled.Nets.Runtime.Tests.Kernels;

/// <summary>Central finite differences in double precision: d(Σ u·f(x))/dx_i ≈ (L(x+h e_i) − L(x−h e_i)) / 2h.</summary>
internal static class GradCheck
{
    public static double[] Random(int n, ulong seed, double scale = 1)
    {
        var r = new Rng(seed);
        return Enumerable.Range(0, n).Select(_ => (r.NextDouble() * 2 - 1) * scale).ToArray();
    }

    /// <summary>Checks an analytic gradient (accumulated into <paramref name="analytic"/>) against finite differences of <paramref name="loss"/> w.r.t. <paramref name="x"/>.</summary>
    public static void Check(double[] x, Func<double> loss, double[] analytic, string what, double h = 1e-5, double tol = 1e-6)
    {
        Assert.Equal(x.Length, analytic.Length);
        double worst = 0;
        for (int i = 0; i < x.Length; i++)
        {
            double keep = x[i];
            x[i] = keep + h; double up = loss();
            x[i] = keep - h; double down = loss();
            x[i] = keep;
            double numeric = (up - down) / (2 * h);
            double err = Math.Abs(numeric - analytic[i]) / Math.Max(1, Math.Abs(numeric));
            worst = Math.Max(worst, err);
            Assert.True(err < tol, $"{what}[{i}]: analytic {analytic[i]} vs numeric {numeric}");
        }
        Assert.True(analytic.Any(v => v != 0), $"{what}: all-zero gradient makes the check vacuous");
    }

    public static double Dot(double[] a, double[] b) { double s = 0; for (int i = 0; i < a.Length; i++) s += a[i] * b[i]; return s; }
}
