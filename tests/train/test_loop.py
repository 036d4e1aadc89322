"""The loop's log line per epoch."""

from segkit.train.loop import epoch_summary


def test_epoch_summary_is_one_short_readable_line():
    record = {"epoch": 3, "train_loss": 0.4713489919900894, "lr": 0.005358867312681466, "epoch_time_s": 16.0741,
              "data_wait_s": 1.2, "val_loss": 0.47, "pseudo_dice": [0.0, 0.12], "mean_pseudo_dice": 0.06,
              "ema_pseudo_dice": 0.05}
    assert epoch_summary(record, 6) == ("epoch 3/6: train loss 0.4713, val loss 0.4700, pseudo Dice [0.0000, 0.1200] "
                                        "(EMA 0.0500), lr 0.00536, 16.1 s")
    no_val = {k: record[k] for k in ("epoch", "train_loss", "lr", "epoch_time_s")}
    assert epoch_summary(no_val, 6) == "epoch 3/6: train loss 0.4713, lr 0.00536, 16.1 s"
