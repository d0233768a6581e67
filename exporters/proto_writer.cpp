#include "exporters/proto_writer.h"

namespace hostprof::proto {

std::unique_ptr<Writer> WriterPool::take() {
    {
        std::lock_guard lock(mu_);
        if (!spares_.empty()) {
            std::unique_ptr<Writer> w = std::move(spares_.back());
            spares_.pop_back();
            bytes_ -= w->capacity();
            return w;
        }
    }
    return std::make_unique<Writer>();
}

void WriterPool::give(std::unique_ptr<Writer> w) {
    w->clear();
    std::lock_guard lock(mu_);
    if (spares_.size() < max_spares_ && bytes_ + w->capacity() <= max_bytes_) {
        bytes_ += w->capacity();
        spares_.push_back(std::move(w));
    }
}

size_t WriterPool::kept_bytes() const {
    std::lock_guard lock(mu_);
    return bytes_;
}

} // namespace hostprof::proto
