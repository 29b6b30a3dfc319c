/* Causal multi-head self-attention on the fused q|k|v projection (GPT-2).
 *
 * qkv (B,T,3C): row (b,t) holds q (C) | k (C) | v (C); head h uses channels
 * [h*HS, (h+1)*HS) of each, HS = C/NH. For every (b, h) and query position t:
 *   preatt[t2] = q_t . k_t2 / sqrt(HS)                  t2 <= t (causal: no future keys)
 *   att[t2]    = softmax over t2 <= t of preatt          (B,NH,T,T), 0 for t2 > t
 *   out_t      = sum_{t2<=t} att[t2] * v_t2              out (B,T,C), heads concatenated
 *
 * Backward (dout given), per (b, h, t), accumulating into dqkv (B,T,3C):
 *   datt[t2]    = dout_t . v_t2
 *   dv_t2      += att[t2] * dout_t
 *   dpreatt[t2] = att[t2] * (datt[t2] - sum_{t3<=t} att[t3] * datt[t3])   softmax backward
 *   dq_t       += sum_{t2<=t} dpreatt[t2] * k_t2 / sqrt(HS)
 *   dk_t2      += dpreatt[t2] * q_t / sqrt(HS)
 * datt and dpreatt live in the caller's scratch, laid out (B,NH,T,T) each, one after the
 * other: 2*B*NH*T*T floats. They are written (not accumulated), so the scratch needs no
 * zeroing. */
#include <math.h>

#include "backends/ref/ref.h"

void zl__ref_attention_forward(const zl_ops *self, float *out, float *att, const float *qkv, int B,
                               int T, int C, int NH)
{
    int C3 = 3 * C, HS = C / NH;
    float scale = 1.0f / sqrtf((float)HS);

    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            for (int h = 0; h < NH; h++) {
                const float *q = qkv + ((size_t)b * T + t) * C3 + h * HS;
                float *att_bth = att + (((size_t)b * NH + h) * T + t) * T;

                /* scores q . k, and their maximum for a stable softmax */
                float maxval = -INFINITY;
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *k = qkv + ((size_t)b * T + t2) * C3 + C + h * HS;
                    float dot = 0.0f;
                    for (int i = 0; i < HS; i++) dot += q[i] * k[i];
                    att_bth[t2] = dot * scale;
                    if (att_bth[t2] > maxval) maxval = att_bth[t2];
                }

                /* softmax over the visible keys; masked (future) entries are exactly 0 */
                float sum = 0.0f;
                for (int t2 = 0; t2 <= t; t2++) {
                    att_bth[t2] = expf(att_bth[t2] - maxval);
                    sum += att_bth[t2];
                }
                for (int t2 = 0; t2 < T; t2++) att_bth[t2] = t2 <= t ? att_bth[t2] / sum : 0.0f;

                /* weighted sum of the values */
                float *out_bth = out + ((size_t)b * T + t) * C + h * HS;
                for (int i = 0; i < HS; i++) out_bth[i] = 0.0f;
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *v = qkv + ((size_t)b * T + t2) * C3 + 2 * C + h * HS;
                    for (int i = 0; i < HS; i++) out_bth[i] += att_bth[t2] * v[i];
                }
            }
        }
    }
}

void zl__ref_attention_backward(const zl_ops *self, float *dqkv, float *scratch, const float *dout,
                                const float *qkv, const float *att, int B, int T, int C, int NH)
{
    int C3 = 3 * C, HS = C / NH;
    float scale = 1.0f / sqrtf((float)HS);
    float *datt = scratch;                           /* (B,NH,T,T) */
    float *dpreatt = scratch + (size_t)B * NH * T * T; /* (B,NH,T,T) */

    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            for (int h = 0; h < NH; h++) {
                size_t row = (((size_t)b * NH + h) * T + t) * T;
                const float *att_bth = att + row;
                float *datt_bth = datt + row;
                float *dpreatt_bth = dpreatt + row;
                const float *dout_bth = dout + ((size_t)b * T + t) * C + h * HS;
                const float *q = qkv + ((size_t)b * T + t) * C3 + h * HS;
                float *dq = dqkv + ((size_t)b * T + t) * C3 + h * HS;

                /* through out_t = sum att[t2] v_t2 */
                for (int t2 = 0; t2 < T; t2++) datt_bth[t2] = 0.0f;
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *v = qkv + ((size_t)b * T + t2) * C3 + 2 * C + h * HS;
                    float *dv = dqkv + ((size_t)b * T + t2) * C3 + 2 * C + h * HS;
                    for (int i = 0; i < HS; i++) {
                        datt_bth[t2] += dout_bth[i] * v[i];
                        dv[i] += att_bth[t2] * dout_bth[i];
                    }
                }

                /* through the softmax: d preatt_j = att_j (datt_j - sum_k att_k datt_k) */
                float dot = 0.0f;
                for (int t2 = 0; t2 <= t; t2++) dot += att_bth[t2] * datt_bth[t2];
                for (int t2 = 0; t2 < T; t2++)
                    dpreatt_bth[t2] = t2 <= t ? att_bth[t2] * (datt_bth[t2] - dot) : 0.0f;

                /* through preatt[t2] = q_t . k_t2 * scale */
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *k = qkv + ((size_t)b * T + t2) * C3 + C + h * HS;
                    float *dk = dqkv + ((size_t)b * T + t2) * C3 + C + h * HS;
                    for (int i = 0; i < HS; i++) {
                        dq[i] += dpreatt_bth[t2] * k[i] * scale;
                        dk[i] += dpreatt_bth[t2] * q[i] * scale;
                    }
                }
            }
        }
    }
}
