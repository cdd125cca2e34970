using MtlMoe.Engine;

namespace MtlMoe.Model.Data;

/// <summary>
/// Draws one synthetic bird photo: a cluttered background, a bird of a given species in a random pose
/// (posture, rotation, scale, position, mirror), optional occluding foliage, then random lighting and noise.
/// The box is the extent of the pixels the bird's own shapes cover (before occluders, so a partly hidden bird
/// keeps its full box, as a human annotator would draw it), clipped to the frame.
/// </summary>
internal sealed class BirdRenderer
{
    private enum Posture { Upright, Horizontal, Flying }

    private readonly Raster _r;
    private readonly Rng _rng;
    private readonly int _w, _h;
    // Local bird frame: facing +u, v down, one unit ≈ the body length; image = centre + scale · rot(θ) · (±u, v).
    private float _cx, _cy, _s, _cos, _sin;
    private bool _flip;

    private BirdRenderer(int w, int h, Rng rng) { _w = w; _h = h; _rng = rng; _r = new Raster(w, h); }

    public static (RgbImage Image, BoxF Box) Render(BirdSpecies sp, int width, int height, Rng rng)
    {
        var b = new BirdRenderer(width, height, rng);
        return b.Draw(sp);
    }

    private float U(double lo, double hi) => (float)_rng.Uniform(lo, hi);

    private (float X, float Y) P(float u, float v)
    {
        if (_flip) u = -u;
        return (_cx + _s * (u * _cos - v * _sin), _cy + _s * (u * _sin + v * _cos));
    }

    private (float U, float V) Local(float x, float y)
    {
        float dx = (x - _cx) / _s, dy = (y - _cy) / _s;
        float u = dx * _cos + dy * _sin, v = -dx * _sin + dy * _cos;
        return (_flip ? -u : u, v);
    }

    private static bool InEllipse(float u, float v, float u0, float v0, float rx, float ry, float a)
    {
        float du = u - u0, dv = v - v0, c = MathF.Cos(a), s = MathF.Sin(a);
        float p = (du * c + dv * s) / rx, q = (-du * s + dv * c) / ry;
        return p * p + q * q <= 1;
    }

    private Func<float, float, bool> ClipLocal(float u0, float v0, float rx, float ry, float a = 0)
        => (x, y) => { var (u, v) = Local(x, y); return InEllipse(u, v, u0, v0, rx, ry, a); };

    private void LEllipse(float u, float v, float rx, float ry, float a, Rgb c, Func<float, float, bool>? clip = null)
    {
        var (x, y) = P(u, v);
        float ang = MathF.Atan2(_sin, _cos) + (_flip ? -a : a);
        _r.Ellipse(x, y, rx * _s, ry * _s, ang, c, 1, clip);
    }

    private void LPoly(ReadOnlySpan<(float U, float V)> pts, Rgb c)
    {
        var img = new (float, float)[pts.Length];
        for (int i = 0; i < pts.Length; i++) img[i] = P(pts[i].U, pts[i].V);
        _r.Polygon(img, c);
    }

    private void LLine(float u0, float v0, float u1, float v1, float t, Rgb c)
    {
        var (xa, ya) = P(u0, v0); var (xb, yb) = P(u1, v1);
        _r.Line(xa, ya, xb, yb, t * _s, c);
    }

    private Rgb Jitter(Rgb c, float amount)
        => new(Math.Clamp(c.R * U(1 - amount, 1 + amount), 0, 1), Math.Clamp(c.G * U(1 - amount, 1 + amount), 0, 1), Math.Clamp(c.B * U(1 - amount, 1 + amount), 0, 1));

    private (RgbImage, BoxF) Draw(BirdSpecies sp)
    {
        float minDim = Math.Min(_w, _h);
        Background(minDim);

        var posture = (Posture)_rng.NextInt(3);
        _flip = _rng.NextDouble() < 0.5;
        float tilt = posture switch { Posture.Upright => U(-0.75, -0.4), Posture.Horizontal => U(-0.15, 0.15), _ => U(-0.2, 0.2) };
        float theta = (_flip ? -tilt : tilt) + U(-0.25, 0.25);
        _cos = MathF.Cos(theta); _sin = MathF.Sin(theta);
        _s = minDim * U(0.26, 0.42);
        _cx = _w * U(0.36, 0.64); _cy = _h * U(0.38, 0.62);

        if (posture != Posture.Flying && _rng.NextDouble() < 0.8) Perch(minDim);

        _r.MaskOn = true;
        DrawBird(sp, posture);
        _r.MaskOn = false;
        var box = _r.MaskExtent() ?? new BoxF(0, 0, _w, _h);

        if (_rng.NextDouble() < 0.35) Occlude(box);
        Light();
        return (_r.ToImage(), box);
    }

    private void Background(float minDim)
    {
        int scene = _rng.NextInt(4);
        Rgb top, bottom; Rgb[] clutter;
        switch (scene)
        {
            case 0: // sky
                top = Jitter(Rgb.Bytes(110, 160, 220), 0.12f); bottom = Jitter(Rgb.Bytes(205, 222, 238), 0.08f);
                clutter = [Rgb.Bytes(240, 242, 246), Rgb.Bytes(210, 215, 225), Rgb.Bytes(90, 120, 70)];
                break;
            case 1: // foliage
                top = Jitter(Rgb.Bytes(60, 95, 50), 0.2f); bottom = Jitter(Rgb.Bytes(35, 60, 30), 0.2f);
                clutter = [Rgb.Bytes(80, 130, 60), Rgb.Bytes(40, 70, 35), Rgb.Bytes(120, 150, 70), Rgb.Bytes(90, 70, 45)];
                break;
            case 2: // ground, reeds
                top = Jitter(Rgb.Bytes(170, 160, 120), 0.15f); bottom = Jitter(Rgb.Bytes(120, 100, 70), 0.15f);
                clutter = [Rgb.Bytes(150, 130, 90), Rgb.Bytes(100, 85, 60), Rgb.Bytes(190, 180, 140), Rgb.Bytes(110, 120, 70)];
                break;
            default: // water
                top = Jitter(Rgb.Bytes(70, 110, 120), 0.15f); bottom = Jitter(Rgb.Bytes(40, 80, 95), 0.15f);
                clutter = [Rgb.Bytes(120, 160, 170), Rgb.Bytes(30, 60, 70), Rgb.Bytes(170, 200, 205)];
                break;
        }
        _r.VerticalGradient(top, bottom);
        int blobs = 6 + _rng.NextInt(16);
        for (int i = 0; i < blobs; i++)
        {
            var c = Jitter(clutter[_rng.NextInt(clutter.Length)], 0.15f);
            float rx = minDim * U(0.03, 0.22), ry = rx * U(0.3, 1.0);
            _r.Ellipse(U(0, _w), U(0, _h), rx, ry, U(0, MathF.PI), c, U(0.3, 0.9));
        }
        int branches = _rng.NextInt(3);
        for (int i = 0; i < branches; i++)
        {
            var c = Jitter(Rgb.Bytes(85, 62, 40), 0.2f);
            float x0 = U(-0.1, 1.1) * _w, y0 = U(0, 1) * _h, a = U(0, MathF.PI), len = minDim * U(0.4, 1.2);
            float x1 = x0 + len * MathF.Cos(a), y1 = y0 + len * MathF.Sin(a);
            _r.Line(x0, y0, x1, y1, minDim * U(0.01, 0.035), c, U(0.6, 1));
            int leaves = _rng.NextInt(6);
            for (int k = 0; k < leaves; k++)
            {
                float t = U(0, 1);
                _r.Ellipse(x0 + (x1 - x0) * t + U(-5, 5), y0 + (y1 - y0) * t + U(-5, 5), minDim * U(0.02, 0.05), minDim * U(0.008, 0.02),
                    U(0, MathF.PI), Jitter(Rgb.Bytes(70, 120, 50), 0.25f), U(0.6, 1));
            }
        }
    }

    // A branch through the bird's feet (drawn before the bird, which stands on it).
    private void Perch(float minDim)
    {
        var (fx, fy) = P(0.03f, 0.44f);
        float a = U(-0.3, 0.3), len = minDim * 1.5f;
        var c = Jitter(Rgb.Bytes(92, 66, 42), 0.2f);
        _r.Line(fx - len * MathF.Cos(a), fy + 0.03f * _s - len * MathF.Sin(a), fx + len * MathF.Cos(a), fy + 0.03f * _s + len * MathF.Sin(a), 0.06f * _s, c);
    }

    private void DrawBird(BirdSpecies sp, Posture posture)
    {
        var body = Jitter(BirdSpecies.FamilyBody[sp.Family], 0.1f);
        var wing = body.Scale(U(0.62, 0.75));
        var breast = body.Mix(Rgb.Bytes(238, 228, 205), U(0.45, 0.65));
        var dark = Rgb.Bytes(45, 38, 32);
        var legs = Jitter(Rgb.Bytes(110, 95, 85), 0.15f);
        float plump = U(0.9, 1.1);
        float bodyRx = 0.40f, bodyRy = 0.24f * plump;

        // Far wing first (behind the body) when flying.
        if (posture == Posture.Flying) LEllipse(-0.22f, -0.44f, 0.34f, 0.11f, 0.78f + U(-0.15, 0.15), wing.Scale(0.8f));

        Tail(sp.Tail, wing, posture);

        if (posture == Posture.Flying)
        {
            LLine(-0.05f, 0.18f, -0.22f, 0.28f, 0.03f, legs);
            LLine(0.03f, 0.18f, -0.14f, 0.29f, 0.03f, legs);
        }
        else
        {
            float spread = U(-0.03, 0.03);
            foreach (var u in new[] { -0.02f, 0.08f })
            {
                LLine(u, 0.2f, u - 0.02f + spread, 0.43f, 0.032f, legs);
                LLine(u - 0.02f + spread, 0.43f, u + 0.05f + spread, 0.45f, 0.022f, legs);   // toes
            }
        }

        LEllipse(0, 0, bodyRx, bodyRy, 0, body);
        var inBody = ClipLocal(0, 0, bodyRx, bodyRy);
        const float pu = 0.15f, pv = 0.09f, prx = 0.27f, pry = 0.18f, pa = 0.35f;
        LEllipse(pu, pv, prx, pry, pa, breast, inBody);
        BreastPattern(sp.Breast, dark.Mix(body, 0.25f), inBody, pu, pv, prx, pry, pa);

        // Near wing: folded along the body, or raised.
        float wu, wv, wrx, wry, wa;
        if (posture == Posture.Flying) { wu = -0.16f; wv = -0.5f; wrx = 0.37f; wry = 0.12f; wa = 1.1f + U(-0.15, 0.15); }
        else { wu = -0.08f; wv = -0.03f; wrx = 0.31f; wry = 0.14f; wa = 0.1f + U(-0.05, 0.1); }
        LEllipse(wu, wv, wrx, wry, wa, wing);
        if (BirdSpecies.WingBarColor[sp.WingBar] is Rgb bar)
        {
            var inWing = ClipLocal(wu, wv, wrx, wry, wa);
            foreach (float t in new[] { 0.02f, 0.13f })
                LEllipse(wu + t * MathF.Cos(wa), wv + t * MathF.Sin(wa), 0.024f, 0.3f, wa, bar, inWing);
        }

        // Head, crown, eye, beak.
        const float hu = 0.40f, hv = -0.20f, hr = 0.165f;
        LEllipse(hu, hv, hr, hr, 0, body);
        if (BirdSpecies.CrownColor[sp.Crown] is Rgb crown)
            LEllipse(hu - 0.01f, hv - 0.10f, 0.15f, 0.085f, -0.15f, crown, ClipLocal(hu, hv, hr + 0.008f, hr + 0.008f));
        if (sp.EyeRing) LEllipse(hu + 0.07f, hv - 0.03f, 0.055f, 0.055f, 0, Rgb.Bytes(245, 245, 240));
        LEllipse(hu + 0.07f, hv - 0.03f, 0.031f, 0.031f, 0, Rgb.Bytes(15, 12, 10));
        LEllipse(hu + 0.08f, hv - 0.04f, 0.009f, 0.009f, 0, Rgb.Bytes(230, 230, 230));
        float len = BirdSpecies.BeakLen[sp.BeakLength] * U(0.88, 1.12);
        float droop = U(-0.01, 0.04) * len / 0.17f;
        var beak = Jitter(Rgb.Bytes(60, 55, 50), 0.2f);
        LPoly([(hu + 0.13f, hv - 0.055f), (hu + 0.155f + len, hv + 0.0f + droop), (hu + 0.13f, hv + 0.045f)], beak);
    }

    private void Tail(TailShape shape, Rgb c, Posture posture)
    {
        const float au = -0.34f, av = 0.04f;
        float rot = U(-0.25, 0.25) + (posture == Posture.Upright ? 0.25f : 0f);
        (float, float)[] rel = shape switch
        {
            TailShape.Pointed => [(0, -0.07f), (-0.48f, 0.0f), (0, 0.07f)],
            TailShape.Square => [(0, -0.07f), (-0.38f, -0.10f), (-0.38f, 0.10f), (0, 0.07f)],
            TailShape.Forked => [(0, -0.07f), (-0.46f, -0.14f), (-0.27f, 0.0f), (-0.46f, 0.14f), (0, 0.07f)],
            _ => Rounded(),
        };
        float cr = MathF.Cos(rot), sr = MathF.Sin(rot);
        var pts = rel.Select(p => (au + p.Item1 * cr - p.Item2 * sr, av + p.Item1 * sr + p.Item2 * cr)).ToArray();
        LPoly(pts, c);
    }

    private static (float, float)[] Rounded()
    {
        var pts = new List<(float, float)> { (0, -0.07f) };
        for (int i = 0; i <= 8; i++)
        {
            float a = MathF.PI * (0.6f + 0.8f * i / 8);   // arc through the back (angle π)
            pts.Add((-0.24f + 0.15f * MathF.Cos(a), 0.15f * MathF.Sin(a)));
        }
        pts.Add((0, 0.07f));
        return pts.ToArray();
    }

    private void BreastPattern(BreastPattern p, Rgb c, Func<float, float, bool> inBody, float pu, float pv, float prx, float pry, float pa)
    {
        if (p == Data.BreastPattern.Plain) return;
        var inPatch = ClipLocal(pu, pv, prx, pry, pa);
        bool Both(float x, float y) => inBody(x, y) && inPatch(x, y);
        if (p == Data.BreastPattern.Barred)
        {
            for (int i = -3; i <= 3; i++)
                LEllipse(pu + i * 0.06f, pv, 0.012f, 0.3f, pa, c, Both);
            return;
        }
        int n = p == Data.BreastPattern.Spotted ? 16 : 12;
        for (int i = 0; i < n; i++)
        {
            float u, v; int guard = 0;
            do { u = pu + U(-prx, prx); v = pv + U(-pry, pry); } while (!InEllipse(u, v, pu, pv, prx * 0.9f, pry * 0.9f, pa) && ++guard < 20);
            if (p == Data.BreastPattern.Spotted) LEllipse(u, v, 0.022f, 0.022f, 0, c, Both);
            else LEllipse(u, v, 0.045f, 0.011f, pa * 0.5f, c, Both);
        }
    }

    // Foliage or a twig in front of part of the bird.
    private void Occlude(BoxF box)
    {
        int n = 1 + _rng.NextInt(2);
        float bw = box.Width, bh = box.Height;
        for (int i = 0; i < n; i++)
        {
            float x = box.X0 + U(0, 1) * bw, y = box.Y0 + U(0, 1) * bh;
            if (_rng.NextDouble() < 0.5)
            {
                var c = Jitter(Rgb.Bytes(75, 125, 55), 0.25f);
                int leaves = 3 + _rng.NextInt(4);
                for (int k = 0; k < leaves; k++)
                    _r.Ellipse(x + U(-0.12, 0.12) * bw, y + U(-0.12, 0.12) * bh, U(0.06, 0.14) * bw, U(0.025, 0.06) * bw, U(0, MathF.PI), c.Scale(U(0.8, 1.15)));
            }
            else
            {
                float a = U(0, MathF.PI), len = U(0.3, 0.6) * MathF.Max(bw, bh);
                _r.Line(x - len * MathF.Cos(a), y - len * MathF.Sin(a), x + len * MathF.Cos(a), y + len * MathF.Sin(a),
                    MathF.Max(1.5f, 0.03f * MathF.Max(bw, bh)), Jitter(Rgb.Bytes(80, 60, 40), 0.2f));
            }
        }
    }

    // Global exposure and white balance, a light gradient across the frame, sensor noise.
    private void Light()
    {
        float gain = U(0.7, 1.25), tint = U(-0.08, 0.08);
        float gAng = U(0, 2 * MathF.PI), gStr = U(0, 0.45);
        float gx = MathF.Cos(gAng) * gStr, gy = MathF.Sin(gAng) * gStr;
        float noise = U(0.0, 0.025);
        var px = _r.Rgb;
        for (int y = 0; y < _h; y++)
            for (int x = 0; x < _w; x++)
            {
                float f = gain * (1 + gx * ((x + 0.5f) / _w - 0.5f) + gy * ((y + 0.5f) / _h - 0.5f));
                int p = (y * _w + x) * 3;
                px[p] = px[p] * f * (1 + tint) + noise * (float)_rng.NextGaussian();
                px[p + 1] = px[p + 1] * f + noise * (float)_rng.NextGaussian();
                px[p + 2] = px[p + 2] * f * (1 - tint) + noise * (float)_rng.NextGaussian();
            }
    }
}
