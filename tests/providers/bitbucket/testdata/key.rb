class Key < ApplicationRecord
  belongs_to :user
end
